package resultsmd_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/socialbridge/bridge/internal/resultsmd"
)

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	steps := []struct {
		name, body string
		first      bool
		want       string
	}{
		{"a", "# A1", false, "<!-- a:begin -->\n# A1\n<!-- a:end -->\n"},
		{"b", "## B1\n", false, "<!-- a:begin -->\n# A1\n<!-- a:end -->\n\n<!-- b:begin -->\n## B1\n<!-- b:end -->\n"},
		{"a", "# A2\nmore", false, "<!-- a:begin -->\n# A2\nmore\n<!-- a:end -->\n\n<!-- b:begin -->\n## B1\n<!-- b:end -->\n"},
		{"c", "top", true, "<!-- c:begin -->\ntop\n<!-- c:end -->\n\n<!-- a:begin -->\n# A2\nmore\n<!-- a:end -->\n\n<!-- b:begin -->\n## B1\n<!-- b:end -->\n"},
		{"b", "## B2", true, "<!-- c:begin -->\ntop\n<!-- c:end -->\n\n<!-- a:begin -->\n# A2\nmore\n<!-- a:end -->\n\n<!-- b:begin -->\n## B2\n<!-- b:end -->\n"},
	}
	for i, s := range steps {
		if err := resultsmd.WriteSection(path, s.name, s.body, s.first); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != s.want {
			t.Fatalf("step %d:\n got %q\nwant %q", i, got, s.want)
		}
	}
}
