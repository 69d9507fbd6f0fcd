package authn

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// writeRevocation writes data to a revocation file in a temporary directory
// and returns its path.
func writeRevocation(t testing.TB, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRevocationLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		len     int
		revoked []exchange.Principal
		kept    []exchange.Principal
	}{
		{
			name: "entries, comments and blank lines",
			file: filepath.Join("testdata", "revocation", "valid.txt"),
			len:  4,
			revoked: []exchange.Principal{
				{TokenID: "7f3c9a2e-0b1d-4e55-9c1a-3d2b8f6e4a10", Subject: "alice"},
				{TokenID: "a-tab-separated-id"},
				{TokenID: "other", Subject: "user-4242"},
				{Subject: "service:billing#prod"}, // '#' inside a value is not a comment
			},
			kept: []exchange.Principal{
				{TokenID: "user-4242", Subject: "alice"}, // a sub entry is not a jti
				{Subject: "7f3c9a2e-0b1d-4e55-9c1a-3d2b8f6e4a10"},
				{Subject: "service:billing"},
				{TokenID: "#"},
				{TokenID: "trailing"},
				{},
			},
		},
		{
			name:    "CRLF line ends",
			file:    filepath.Join("testdata", "revocation", "crlf.txt"),
			len:     2,
			revoked: []exchange.Principal{{TokenID: "ok-1"}, {Subject: "ok-2"}},
			kept:    []exchange.Principal{{TokenID: "ok-1\r"}, {Subject: "ok-2\r"}},
		},
		{name: "empty path", file: "", len: 0, kept: []exchange.Principal{{TokenID: "a", Subject: "b"}, {}}},
		{
			name:    "byte order mark, no final newline",
			file:    writeRevocation(t, "\ufeffjti first\nsub last"),
			len:     2,
			revoked: []exchange.Principal{{TokenID: "first"}, {Subject: "last"}},
		},
		{name: "only comments", file: writeRevocation(t, "# nothing\n   # revoked\n\n"), len: 0, kept: []exchange.Principal{{TokenID: "#"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := loadRevocation(tt.file)
			if err != nil {
				t.Fatalf("loadRevocation(%q) = %v", tt.file, err)
			}
			if got := l.len(); got != tt.len {
				t.Errorf("len() = %d, want %d", got, tt.len)
			}
			for _, p := range tt.revoked {
				if !l.revoked(&p) {
					t.Errorf("revoked(jti %q, sub %q) = false, want true", p.TokenID, p.Subject)
				}
			}
			for _, p := range tt.kept {
				if l.revoked(&p) {
					t.Errorf("revoked(jti %q, sub %q) = true, want false", p.TokenID, p.Subject)
				}
			}
		})
	}
}

func TestRevocationErrors(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA"
	tests := []struct {
		name string
		data string
		want string // after the path
		// secret must not appear in the error.
		secret string
	}{
		{name: "unknown keyword", data: "jti ok\n\nrevoke some-id\n", want: `:3: "revoke" is not an entry`, secret: "some-id"},
		{name: "pasted token", data: "# tokens\n" + token + "\n", want: fmt.Sprintf(":2: a word of %d bytes is not an entry", len(token)), secret: token[:20]},
		{name: "token after unknown keyword", data: "token " + token + "\n", want: `:1: "token" is not an entry`, secret: token[:20]},
		{name: "jti without value", data: "jti\n", want: ":1: jti needs a value"},
		{name: "value that is a comment", data: "sub   # who?\n", want: ":1: sub needs a value"},
		{name: "value with spaces", data: "sub ok\nsub John Doe\n", want: ":2: sub takes one value, without spaces", secret: "John"},
		{name: "invalid UTF-8", data: "jti \xff\xfe\n", want: ":1: jti value is not valid UTF-8"},
		{name: "keyword case", data: "JTI abc\n", want: `:1: "JTI" is not an entry`, secret: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeRevocation(t, tt.data)
			l, err := loadRevocation(path)
			if err == nil {
				t.Fatalf("loadRevocation() = %d entries, nil; want error %q", l.len(), tt.want)
			}
			if got := err.Error(); !strings.HasPrefix(got, path) || !strings.Contains(got, tt.want) {
				t.Errorf("loadRevocation() error = %q, want %q%s", got, path, tt.want)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("loadRevocation() error %q shows the line's value", err)
			}
		})
	}
}

func TestRevocationFileFixture(t *testing.T) {
	path := filepath.Join("testdata", "revocation", "bad_keyword.txt")
	_, err := loadRevocation(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":3: ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("loadRevocation(%s) error = %v, want %s:3: without the line's value", path, err, path)
	}
}

func TestRevocationFileLimits(t *testing.T) {
	if _, err := loadRevocation(filepath.Join(t.TempDir(), "absent.txt")); err == nil {
		t.Error("loadRevocation(absent file) = nil error")
	}
	// A sparse file just over the cap is refused before it is read.
	path := filepath.Join(t.TempDir(), "huge.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxRevocationFile + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := loadRevocation(path); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Errorf("loadRevocation(64 MiB + 1) error = %v, want larger than 64 MiB", err)
	}
}

func TestRevocationNil(t *testing.T) {
	var l *revocationList
	if l.revoked(&exchange.Principal{TokenID: "a", Subject: "b"}) {
		t.Error("nil list revoked a principal")
	}
	if got := l.len(); got != 0 {
		t.Errorf("nil list len() = %d, want 0", got)
	}
	full, err := loadRevocation(writeRevocation(t, "jti a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if full.revoked(nil) {
		t.Error("revoked(nil principal) = true")
	}
}

func TestRevocationLookupAllocs(t *testing.T) {
	l, err := loadRevocation(writeRevocation(t, "jti a\nsub b\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &exchange.Principal{TokenID: "not-listed", Subject: "b"}
	got := testing.AllocsPerRun(100, func() {
		if !l.revoked(p) {
			t.Fatal("revoked() = false, want true")
		}
	})
	if got != 0 {
		t.Errorf("revoked() allocates %v times, want 0", got)
	}
}
