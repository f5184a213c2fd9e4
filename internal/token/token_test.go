package token

import (
	"encoding/hex"
	"strings"
	"testing"
)

var (
	testCA    = []byte("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n")
	testHash  = HashCA(testCA)
	otherHash = HashCA([]byte("another CA"))
)

// secret is a password distinctive enough that finding it in an error
// message cannot be a coincidence.
const secret = "Sup3rS3cretPassw0rdValue"

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		tok  Token
	}{
		{"server", New(testCA, RoleServer, secret)},
		{"node", New(testCA, RoleNode, secret)},
		{"password with colons", New(testCA, RoleNode, "a:b::c")},
		{"bare", Token{Password: secret}},
		{"bare with colons", Token{Password: "x::server:y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.tok.String()
			got, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if got != tt.tok {
				t.Fatalf("Parse(String()) = %+v, want %+v", got, tt.tok)
			}
			if got.Secure() != (tt.tok.CAHash != "") {
				t.Fatalf("Secure() = %v for %+v", got.Secure(), got)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Token
		wantErr string // substring; empty means success
	}{
		{
			name: "secure server",
			in:   "K10" + testHash + "::server:" + secret,
			want: Token{CAHash: testHash, Username: RoleServer, Password: secret},
		},
		{
			name: "secure node with surrounding whitespace",
			in:   "  \n K10" + testHash + "::node:" + secret + "\n\r\n",
			want: Token{CAHash: testHash, Username: RoleNode, Password: secret},
		},
		{
			name: "uppercase hash is normalised",
			in:   "K10" + strings.ToUpper(testHash) + "::node:" + secret,
			want: Token{CAHash: testHash, Username: RoleNode, Password: secret},
		},
		{
			name: "bare secret",
			in:   "abc",
			want: Token{Password: "abc"},
		},
		{
			name: "bare secret with colons",
			in:   "foo::server:" + secret,
			want: Token{Password: "foo::server:" + secret},
		},
		{name: "empty", in: "", wantErr: "token is empty"},
		{name: "whitespace only", in: " \n\t", wantErr: "token is empty"},
		{
			name:    "hash too short",
			in:      "K10abcdef::server:" + secret,
			wantErr: "CA hash is 6 characters long, expected 64",
		},
		{
			name:    "hash too long",
			in:      "K10" + testHash + "00::server:" + secret,
			wantErr: "CA hash is 66 characters long, expected 64",
		},
		{
			name:    "hash not hex",
			in:      "K10" + strings.Repeat("g", 64) + "::server:" + secret,
			wantErr: "non-hex",
		},
		{
			name:    "missing double colon",
			in:      "K10" + testHash + ":server:" + secret,
			wantErr: `no "::"`,
		},
		{
			name:    "K10 prefix only",
			in:      "K10",
			wantErr: `no "::"`,
		},
		{
			name:    "missing colon between username and password",
			in:      "K10" + testHash + "::" + secret,
			wantErr: `no ":" between username and password`,
		},
		{
			name:    "empty password",
			in:      "K10" + testHash + "::server:",
			wantErr: "password is empty",
		},
		{
			name:    "unknown role",
			in:      "K10" + testHash + "::admin:" + secret,
			wantErr: "unknown username",
		},
		{
			name:    "role is case sensitive",
			in:      "K10" + testHash + "::Server:" + secret,
			wantErr: "unknown username",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: unexpected error: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Parse = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error containing %q", got, tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not contain %q", msg, tt.wantErr)
			}
			// Every error must show what a good token looks like.
			if !strings.Contains(msg, "valid token looks like") {
				t.Errorf("error %q does not describe the valid form", msg)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, secret[:8]) {
				t.Errorf("error %q leaks the password", msg)
			}
		})
	}
}

// TestParseErrorsNeverLeakPassword feeds many malformed tokens whose secret
// part lands in different fields and checks that none is echoed.
func TestParseErrorsNeverLeakPassword(t *testing.T) {
	inputs := []string{
		"K10" + testHash + "::" + secret,
		"K10" + testHash + ":" + secret,
		"K10" + testHash + secret,
		"K10" + secret + "::server:" + secret,
		"K10" + testHash + "::" + secret + ":" + secret,
		"K10" + secret,
		"K10" + strings.Repeat("z", 64) + "::server:" + secret,
	}
	for _, in := range inputs {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error", in)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Parse error leaks the password: %v", err)
		}
	}
}

func TestStringAndSecure(t *testing.T) {
	tok := New(testCA, RoleServer, "pw")
	if want := "K10" + testHash + "::server:pw"; tok.String() != want {
		t.Errorf("String() = %q, want %q", tok.String(), want)
	}
	if !tok.Secure() {
		t.Error("Secure() = false for a token with CA hash")
	}
	bare := Token{Password: "pw"}
	if bare.String() != "pw" {
		t.Errorf("bare String() = %q, want %q", bare.String(), "pw")
	}
	if bare.Secure() {
		t.Error("Secure() = true for a bare token")
	}
}

func TestHashCA(t *testing.T) {
	// sha256("") is a well-known constant, so this pins the encoding.
	const emptySum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := HashCA(nil); got != emptySum {
		t.Errorf("HashCA(nil) = %s, want %s", got, emptySum)
	}
	if got := HashCA(testCA); len(got) != 64 || strings.ToLower(got) != got {
		t.Errorf("HashCA = %q, want 64 lowercase hex chars", got)
	}
}

func TestVerifyCA(t *testing.T) {
	tests := []struct {
		name    string
		tok     Token
		ca      []byte
		wantErr bool
	}{
		{"match", New(testCA, RoleNode, secret), testCA, false},
		{"uppercase hash still matches", Token{CAHash: strings.ToUpper(testHash), Username: RoleNode, Password: secret}, testCA, false},
		{"mismatch", Token{CAHash: otherHash, Username: RoleNode, Password: secret}, testCA, true},
		{"one byte differs", New(testCA, RoleNode, secret), append([]byte("\n"), testCA...), true},
		{"bare never fails", Token{Password: secret}, testCA, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tok.VerifyCA(tt.ca)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifyCA error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			if !strings.Contains(msg, "mismatch") {
				t.Errorf("error %q does not say mismatch", msg)
			}
			if !strings.Contains(msg, strings.ToLower(tt.tok.CAHash)) || !strings.Contains(msg, HashCA(tt.ca)) {
				t.Errorf("error %q does not name both hashes", msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q leaks the password", msg)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Fatalf("GenerateSecret = %q, want 64 hex chars (err %v)", a, err)
	}
	if a == b {
		t.Fatal("two generated secrets are equal")
	}
	// A generated secret must never be mistaken for a secure token.
	if strings.HasPrefix(a, "K10") {
		t.Fatalf("generated secret %q starts with K10", a)
	}
	if tok, err := Parse(a); err != nil || tok.Password != a {
		t.Fatalf("Parse(generated) = %+v, %v", tok, err)
	}
}
