package kafkaconn_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// TestRegistryCredentials: credentials written in the URL or beside it reach the registry as
// basic auth, for every client built here, and never appear in an error.
func TestRegistryCredentials(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		got = append(got, user+":"+pass)
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://reader:url-secret@", 1)
	for _, r := range []config.SchemaRegistry{
		{URL: withCreds},
		{URL: srv.URL, Username: "reader", Password: "field-secret"},
	} {
		cl, err := kafkaconn.Registry(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Subjects(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "reader:url-secret" || got[1] != "reader:field-secret" {
		t.Fatalf("the registry saw %q", got)
	}
	if cl, err := kafkaconn.Registry(config.SchemaRegistry{}); cl != nil || err != nil {
		t.Fatalf("no URL: %v, %v", cl, err)
	}
	down := strings.Replace(withCreds, srv.URL[len("http://"):], "127.0.0.1:1", 1)
	cl, _ := kafkaconn.Registry(config.SchemaRegistry{URL: down})
	if _, err := cl.Subjects(context.Background()); err == nil || strings.Contains(err.Error(), "url-secret") {
		t.Fatalf("error of an unreachable registry: %v", err)
	}
}
