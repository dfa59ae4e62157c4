// Command noteverify checks a signed note (c2sp.org/signed-note) the way Go's checksum
// database client does, with golang.org/x/mod/sumdb/note, so Jol's checkpoints are verified by
// code we did not write.
//
//	noteverify <vkey> [<vkey>...] < note
//
// Every vkey is a verifier key, name+hex(key ID)+base64(type || public key). Type 0x01 keys
// (Ed25519 note signatures, the log's) are read by note.NewVerifier itself; type 0x04 keys
// (Ed25519 cosignature/v1, c2sp.org/tlog-cosignature, a witness's) by the small verifier below,
// which sumdb/note does not have. The note is opened with note.Open against all of them.
//
// On success it prints the note text, then one line "verified: <key name>" per verified
// signature, and exits 0. It exits 1 with the error on standard error when note.Open refuses the
// note (malformed, a known key's signature that does not verify, no known key's signature), and
// also when one of the given keys has no verified signature on the note: each key named is a
// signature the caller requires.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Signature types of c2sp.org/signed-note.
const (
	typeEd25519     = 0x01
	typeCosignature = 0x04
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: noteverify <vkey> [<vkey>...] < note")
		os.Exit(2)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(fmt.Errorf("reading the note: %w", err))
	}
	text, names, err := verify(msg, os.Args[1:])
	if err != nil {
		fail(err)
	}
	fmt.Print(text)
	for _, name := range names {
		fmt.Printf("verified: %s\n", name)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "noteverify: %v\n", err)
	os.Exit(1)
}

// verify opens msg with the verifiers of vkeys and requires a verified signature from each.
// It returns the note text and the names of the verified signatures, in the note's order.
func verify(msg []byte, vkeys []string) (string, []string, error) {
	verifiers := make([]note.Verifier, 0, len(vkeys))
	for _, vkey := range vkeys {
		v, err := newVerifier(vkey)
		if err != nil {
			return "", nil, fmt.Errorf("vkey %q: %w", vkey, err)
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return "", nil, err
	}
	signed := make(map[string]bool)
	names := make([]string, 0, len(n.Sigs))
	for _, sig := range n.Sigs {
		signed[fmt.Sprintf("%s+%08x", sig.Name, sig.Hash)] = true
		names = append(names, sig.Name)
	}
	for _, v := range verifiers {
		if !signed[fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())] {
			return "", nil, fmt.Errorf("no verified signature by %s+%08x", v.Name(), v.KeyHash())
		}
	}
	return n.Text, names, nil
}

// newVerifier reads a vkey: type 0x01 through note.NewVerifier, type 0x04 as a cosigner's.
func newVerifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("not name+hash+key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) == 0 {
		return nil, errors.New("the key is not base64")
	}
	switch key[0] {
	case typeEd25519:
		return note.NewVerifier(vkey)
	case typeCosignature:
		return newCosigner(parts[0], parts[1], key[1:])
	default:
		return nil, fmt.Errorf("signature type 0x%02x is not one this program verifies", key[0])
	}
}

// cosigner verifies Ed25519 cosignature/v1 signatures (c2sp.org/tlog-cosignature): the
// signature is an 8-byte big-endian POSIX time and a 64-byte Ed25519 signature over
// "cosignature/v1\ntime <t>\n" followed by the note text.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func newCosigner(name, hexHash string, key []byte) (*cosigner, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, errors.New("an Ed25519 cosigner key is 32 bytes")
	}
	if name == "" || strings.ContainsAny(name, " +\n\t") {
		return nil, errors.New("invalid key name")
	}
	given, err := hex.DecodeString(hexHash)
	if err != nil || len(hexHash) != 8 {
		return nil, errors.New("the key ID is not 8 hex digits")
	}
	c := &cosigner{name: name, key: ed25519.PublicKey(key)}
	// key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4]
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', typeCosignature})
	h.Write(key)
	c.hash = binary.BigEndian.Uint32(h.Sum(nil))
	if binary.BigEndian.Uint32(given) != c.hash {
		return nil, fmt.Errorf("key ID %s is not the one the name and key give (%08x)", hexHash, c.hash)
	}
	return c, nil
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }

func (c *cosigner) Verify(text, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t > 1<<63-1 {
		return false
	}
	var msg bytes.Buffer
	msg.WriteString("cosignature/v1\ntime ")
	msg.WriteString(strconv.FormatUint(t, 10))
	msg.WriteString("\n")
	msg.Write(text)
	return ed25519.Verify(c.key, msg.Bytes(), sig[8:])
}
