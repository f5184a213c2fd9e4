package token

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := FromFlags("from-flag", file, "token"); err != nil || tok.Password != "from-file" {
		t.Errorf("file given: %+v, %v; want the file's trimmed secret", tok, err)
	}
	if tok, err := FromFlags("from-flag", "", "token"); err != nil || tok.Password != "from-flag" {
		t.Errorf("value given: %+v, %v", tok, err)
	}
	if tok, err := FromFlags("", "", "token"); err != nil || tok != (Token{}) {
		t.Errorf("nothing given: %+v, %v; want the zero Token", tok, err)
	}
	if _, err := FromFlags("", filepath.Join(dir, "missing"), "agent-token"); err == nil || !strings.HasPrefix(err.Error(), "--agent-token-file: ") {
		t.Errorf("missing file: err = %v, want one naming --agent-token-file", err)
	}
	if _, err := FromFlags("K10abc::server:x", "", "token"); err == nil || !strings.HasPrefix(err.Error(), "--token: ") {
		t.Errorf("bad token: err = %v, want one naming --token", err)
	}
}
