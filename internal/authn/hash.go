package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
)

// HashKey returns the hex SHA-256 of an API key: the form in which
// consumers' keys are written in the config (bulwark hash-key).
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// GenerateKey returns a new random API key: 32 bytes from crypto/rand,
// base64url without padding, prefixed "bwk_" so leaked keys are easy to
// find with secret scanners.
func GenerateKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "bwk_" + base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return h, errors.New("an API key hash is not 64 hex digits")
	}
	copy(h[:], b)
	return h, nil
}
