package schemas_test

import (
	"math"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestRegistrySchemaIDBounds checks the schema ids NewRegistry takes from a registry: 0 and
// 2^31-1 fit the wire format's 4 bytes, 2^31 does not and is refused.
func TestRegistrySchemaIDBounds(t *testing.T) {
	seed := func(fake *srfake.Registry, typ string, id int) {
		s, _ := schemas.ForType(typ)
		fake.SeedSchema(schemas.Subject("social.", typ), 1, id, sr.Schema{Schema: s.Text, Type: sr.TypeAvro})
	}
	fake, cl := newFakeRegistry(t)
	seed(fake, event.PostRetry, 0)
	if _, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{}); err != nil {
		t.Errorf("schema id 0: %v", err)
	}

	fake, cl = newFakeRegistry(t)
	for i, typ := range event.Types { // the last id is 2^31-1
		seed(fake, typ, math.MaxInt32-len(event.Types)+1+i)
	}
	if _, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{}); err != nil {
		t.Errorf("schema ids up to 2^31-1: %v", err)
	}

	fake, cl = newFakeRegistry(t)
	seed(fake, event.PostRetry, math.MaxInt32) // the registry numbers the next one 2^31
	_, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{})
	if err == nil || !strings.Contains(err.Error(), "registry returned schema id 2147483648") {
		t.Errorf("schema id 2^31: NewRegistry = %v, want it refused", err)
	}
}
