package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T, dir, name string) *CA {
	t.Helper()
	ca, created, err := LoadOrCreateCA(dir, name, name+"-ca")
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	if !created {
		t.Fatalf("LoadOrCreateCA(%s) reused an existing CA in a fresh dir", name)
	}
	return ca
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
}

func readLeaf(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	certs, _, err := readCerts(certFile)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

func serverSpec() LeafSpec {
	return LeafSpec{
		CommonName:   "kube-apiserver",
		Organization: []string{"k3ha"},
		DNSNames:     []string{"localhost", "kubernetes.default.svc"},
		IPs:          []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.43.0.1"), net.ParseIP("fd00::1")},
		Usage:        ServerAuth,
	}
}

func TestCACreatedOnceThenReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca := newTestCA(t, dir, "server-ca")

	certFile, keyFile := caFiles(dir, "server-ca")
	checkMode(t, dir, 0o700)
	checkMode(t, certFile, 0o644)
	checkMode(t, keyFile, 0o600)

	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Error("CA certificate is not marked as CA")
	}
	if c.Subject.CommonName != "server-ca-ca" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; c.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
	}
	if len(c.SubjectKeyId) == 0 || !bytes.Equal(c.SubjectKeyId, c.AuthorityKeyId) {
		t.Errorf("SKI %x / AKI %x: want both set and equal on a self-signed CA", c.SubjectKeyId, c.AuthorityKeyId)
	}
	if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA validity is %.2f years, want 10", years)
	}
	if c.SerialNumber.BitLen() > 128 || c.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}

	again, created, err := LoadOrCreateCA(dir, "server-ca", "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("second LoadOrCreateCA created a new CA")
	}
	if again.Cert.SerialNumber.Cmp(c.SerialNumber) != 0 {
		t.Errorf("serial changed: %v -> %v", c.SerialNumber, again.Cert.SerialNumber)
	}
	if !bytes.Equal(again.CertPEM, ca.CertPEM) {
		t.Error("CertPEM differs from the first call")
	}
	onDisk, _ := os.ReadFile(certFile)
	if !bytes.Equal(onDisk, again.CertPEM) {
		t.Error("CertPEM differs from the file")
	}
}

func TestIncompleteCAIsError(t *testing.T) {
	for _, remove := range []string{"crt", "key"} {
		t.Run(remove, func(t *testing.T) {
			dir := t.TempDir()
			newTestCA(t, dir, "ca")
			certFile, keyFile := caFiles(dir, "ca")
			victim, other := certFile, keyFile
			if remove == "key" {
				victim, other = keyFile, certFile
			}
			before, _ := os.ReadFile(other)
			if err := os.Remove(victim); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateCA(dir, "ca", "ca")
			if err == nil || !strings.Contains(err.Error(), "incomplete") {
				t.Fatalf("err = %v, want an incomplete-CA error", err)
			}
			if after, _ := os.ReadFile(other); !bytes.Equal(before, after) {
				t.Fatal("the remaining half of the CA was changed")
			}
			if _, err := os.Stat(victim); err == nil {
				t.Fatal("the missing half was recreated")
			}
		})
	}
}

func TestCAMismatchedKeyIsError(t *testing.T) {
	dir := t.TempDir()
	newTestCA(t, dir, "a")
	newTestCA(t, dir, "b")
	certA, keyA := caFiles(dir, "a")
	_, keyB := caFiles(dir, "b")
	other, err := os.ReadFile(keyB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyA, other, 0o600); err != nil {
		t.Fatal(err)
	}

	_, _, err = LoadOrCreateCA(dir, "a", "a")
	if err == nil {
		t.Fatal("LoadOrCreateCA accepted a key that does not match the certificate")
	}
	if !strings.Contains(err.Error(), certA) || !strings.Contains(err.Error(), keyA) {
		t.Errorf("error %q does not name both files", err)
	}
	if _, err := LoadCA(dir, "a"); err == nil {
		t.Error("LoadCA accepted a mismatched pair")
	}
}

func TestWriteCAAndLoadCA(t *testing.T) {
	srcDir := t.TempDir()
	src := newTestCA(t, srcDir, "cluster")
	_, srcKey := caFiles(srcDir, "cluster")
	keyPEM, err := os.ReadFile(srcKey)
	if err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "joined", "tls")
	if err := WriteCA(dst, "cluster", src.CertPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := caFiles(dst, "cluster")
	checkMode(t, dst, 0o700)
	checkMode(t, certFile, 0o644)
	checkMode(t, keyFile, 0o600)

	got, created, err := LoadOrCreateCA(dst, "cluster", "cluster")
	if err != nil {
		t.Fatal(err)
	}
	if created || !got.Cert.Equal(src.Cert) || !bytes.Equal(got.CertPEM, src.CertPEM) {
		t.Fatal("LoadOrCreateCA did not load the CA written by WriteCA")
	}

	// A mismatched pair must be rejected before anything is written.
	other := newTestCA(t, t.TempDir(), "other")
	if err := WriteCA(dst, "cluster", other.CertPEM, keyPEM); err == nil {
		t.Fatal("WriteCA accepted a mismatched pair")
	}
	if onDisk, _ := os.ReadFile(certFile); !bytes.Equal(onDisk, src.CertPEM) {
		t.Fatal("WriteCA replaced the certificate despite the error")
	}
	if err := WriteCA(dst, "cluster", []byte("junk"), keyPEM); err == nil {
		t.Fatal("WriteCA accepted a certificate without PEM")
	}
}

func TestLeafIssuedWithExactSANsAndVerifies(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "server-ca")
	certFile := filepath.Join(dir, "serving", "apiserver.crt")
	keyFile := filepath.Join(dir, "serving", "apiserver.key")
	spec := serverSpec()

	issued, err := ca.EnsureLeaf(certFile, keyFile, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !issued {
		t.Fatal("EnsureLeaf did not issue into empty files")
	}
	checkMode(t, filepath.Dir(certFile), 0o700)
	checkMode(t, certFile, 0o644)
	checkMode(t, keyFile, 0o600)

	leaf := readLeaf(t, certFile)
	if !slices.Equal(leaf.DNSNames, spec.DNSNames) {
		t.Errorf("DNSNames = %v, want %v", leaf.DNSNames, spec.DNSNames)
	}
	if got, want := ipStrings(leaf.IPAddresses), ipStrings(spec.IPs); !slices.Equal(got, want) {
		t.Errorf("IPs = %v, want %v", got, want)
	}
	if len(leaf.URIs) != 0 || len(leaf.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs: %v %v", leaf.URIs, leaf.EmailAddresses)
	}
	if leaf.Subject.CommonName != spec.CommonName || !slices.Equal(leaf.Subject.Organization, spec.Organization) {
		t.Errorf("subject = %v", leaf.Subject)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("KeyUsage = %v", leaf.KeyUsage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, ca.Cert.SubjectKeyId) || len(leaf.SubjectKeyId) == 0 {
		t.Errorf("AKI %x (CA SKI %x), SKI %x", leaf.AuthorityKeyId, ca.Cert.SubjectKeyId, leaf.SubjectKeyId)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 365*24*time.Hour || d > 365*24*time.Hour+2*time.Hour {
		t.Errorf("validity = %v, want 365 days (+1h backdating)", d)
	}
	if skew := time.Since(leaf.NotBefore); skew < 59*time.Minute || skew > 61*time.Minute {
		t.Errorf("NotBefore is %v in the past, want about 1h", skew)
	}

	for _, name := range []string{"localhost", "kubernetes.default.svc", "127.0.0.1", "fd00::1"} {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName:   name,
			Roots:     pool(ca),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify as server for %s: %v", name, err)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "evil.example", Roots: pool(ca)})
	if err == nil {
		t.Error("leaf verified for a name it does not carry")
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err == nil {
		t.Error("server-only leaf verified as a client certificate")
	}
}

func TestClientOnlyCertCannotVerifyAsServer(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "client-ca")
	spec := LeafSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Usage: ClientAuth}
	certFile, keyFile := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	if _, err := ca.EnsureLeaf(certFile, keyFile, spec); err != nil {
		t.Fatal(err)
	}
	leaf := readLeaf(t, certFile)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert does not verify as client: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client-only cert verified as server")
	}
	if len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 0 {
		t.Errorf("client cert has SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
	}

	// Both usages in one certificate.
	both := LeafSpec{CommonName: "etcd-peer", IPs: []net.IP{net.ParseIP("10.0.0.1")}, Usage: ServerAuth | ClientAuth}
	if _, err := ca.EnsureLeaf(certFile, keyFile, both); err != nil {
		t.Fatal(err)
	}
	leaf = readLeaf(t, certFile)
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("dual-use cert does not verify for %v: %v", u, err)
		}
	}
}

func TestLeafReusedWhenSpecUnchanged(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	certFile, keyFile := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	spec := serverSpec()
	if _, err := ca.EnsureLeaf(certFile, keyFile, spec); err != nil {
		t.Fatal(err)
	}
	before := readLeaf(t, certFile)
	keyBefore, _ := os.ReadFile(keyFile)

	// Same content in another order, with duplicates and IPv4 in 16-byte
	// form: still the same set of SANs.
	reordered := spec
	reordered.DNSNames = []string{"kubernetes.default.svc", "localhost", "localhost"}
	reordered.IPs = []net.IP{net.ParseIP("fd00::1"), net.IPv4(10, 43, 0, 1).To16(), net.ParseIP("127.0.0.1").To4()}

	for _, s := range []LeafSpec{spec, reordered} {
		issued, err := ca.EnsureLeaf(certFile, keyFile, s)
		if err != nil {
			t.Fatal(err)
		}
		if issued {
			t.Fatalf("EnsureLeaf reissued for an unchanged spec %+v", s)
		}
	}
	after := readLeaf(t, certFile)
	keyAfter, _ := os.ReadFile(keyFile)
	if after.SerialNumber.Cmp(before.SerialNumber) != 0 || !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("certificate or key changed although nothing was reissued")
	}

	// A reloaded CA is the same CA: no reissue either.
	reloaded, err := LoadCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	if issued, err := reloaded.EnsureLeaf(certFile, keyFile, spec); err != nil || issued {
		t.Fatalf("reloaded CA: issued=%v err=%v", issued, err)
	}
}

func TestLeafReissued(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, ca *CA, certFile, keyFile string, spec *LeafSpec)
		reason string
	}{
		{
			name: "SAN DNS name added",
			change: func(_ *testing.T, _ *CA, _, _ string, spec *LeafSpec) {
				spec.DNSNames = append(spec.DNSNames, "k3ha.example")
			},
			reason: "DNS names differ",
		},
		{
			name: "SAN IP added",
			change: func(_ *testing.T, _ *CA, _, _ string, spec *LeafSpec) {
				spec.IPs = append(spec.IPs, net.ParseIP("192.168.1.10"))
			},
			reason: "IP addresses differ",
		},
		{
			name: "SAN IP removed",
			change: func(_ *testing.T, _ *CA, _, _ string, spec *LeafSpec) {
				spec.IPs = spec.IPs[:1]
			},
			reason: "IP addresses differ",
		},
		{
			name: "common name changed",
			change: func(_ *testing.T, _ *CA, _, _ string, spec *LeafSpec) {
				spec.CommonName = "other"
			},
			reason: "common name differs",
		},
		{
			name: "organization changed",
			change: func(_ *testing.T, _ *CA, _, _ string, spec *LeafSpec) {
				spec.Organization = []string{"system:masters"}
			},
			reason: "organization differs",
		},
		{
			name: "usage changed",
			change: func(_ *testing.T, _ *CA, _, _ string, spec *LeafSpec) {
				spec.Usage = ServerAuth | ClientAuth
			},
			reason: "extended key usage differs",
		},
		{
			name: "expires within 90 days",
			change: func(t *testing.T, ca *CA, certFile, keyFile string, spec *LeafSpec) {
				now := time.Now()
				certPEM, keyPEM, err := ca.issue(*spec, now.Add(-300*24*time.Hour), now.Add(60*24*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				writeTestPair(t, certFile, keyFile, certPEM, keyPEM)
			},
			reason: "expires within 90 days",
		},
		{
			name: "signed by another CA",
			change: func(t *testing.T, _ *CA, certFile, keyFile string, spec *LeafSpec) {
				other := newTestCA(t, t.TempDir(), "other")
				if _, err := other.EnsureLeaf(certFile, keyFile, *spec); err != nil {
					t.Fatal(err)
				}
			},
			reason: "not signed by this CA",
		},
		{
			name: "certificate missing",
			change: func(t *testing.T, _ *CA, certFile, _ string, _ *LeafSpec) {
				if err := os.Remove(certFile); err != nil {
					t.Fatal(err)
				}
			},
			reason: "no such file",
		},
		{
			name: "key missing",
			change: func(t *testing.T, _ *CA, _, keyFile string, _ *LeafSpec) {
				if err := os.Remove(keyFile); err != nil {
					t.Fatal(err)
				}
			},
			reason: "no such file",
		},
		{
			name: "certificate garbage",
			change: func(t *testing.T, _ *CA, certFile, _ string, _ *LeafSpec) {
				if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			reason: "no PEM certificate",
		},
		{
			name: "key does not match certificate",
			change: func(t *testing.T, ca *CA, _, keyFile string, spec *LeafSpec) {
				_, keyPEM, err := ca.Issue(*spec)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			reason: "does not match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t, dir, "ca")
			certFile, keyFile := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
			spec := serverSpec()
			if _, err := ca.EnsureLeaf(certFile, keyFile, spec); err != nil {
				t.Fatal(err)
			}
			first := readLeaf(t, certFile)

			tt.change(t, ca, certFile, keyFile, &spec)
			if r := ca.staleReason(certFile, keyFile, spec, time.Now()); !strings.Contains(r, tt.reason) {
				t.Errorf("stale reason = %q, want it to contain %q", r, tt.reason)
			}

			issued, err := ca.EnsureLeaf(certFile, keyFile, spec)
			if err != nil {
				t.Fatal(err)
			}
			if !issued {
				t.Fatal("EnsureLeaf kept the old certificate")
			}
			leaf := readLeaf(t, certFile)
			if leaf.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Error("serial number did not change")
			}
			if samePublicKey(leaf.PublicKey, first.PublicKey) {
				t.Error("reissued certificate reuses the old key")
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: spec.Usage.extKeyUsages()}); err != nil {
				t.Errorf("reissued certificate does not verify: %v", err)
			}
			checkMode(t, certFile, 0o644)
			checkMode(t, keyFile, 0o600)
			// The new pair is stable.
			if issued, err := ca.EnsureLeaf(certFile, keyFile, spec); err != nil || issued {
				t.Errorf("second EnsureLeaf after reissue: issued=%v err=%v", issued, err)
			}
		})
	}
}

func writeTestPair(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureLeafRejectsBadSpec(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	bad := []LeafSpec{
		{CommonName: "", Usage: ServerAuth},
		{CommonName: "x"},
		{CommonName: "x", Usage: 8},
		{CommonName: "x", Usage: ServerAuth, IPs: []net.IP{{1, 2, 3}}},
		{CommonName: "x", Usage: ServerAuth, DNSNames: []string{""}},
	}
	for _, spec := range bad {
		if _, err := ca.EnsureLeaf(filepath.Join(dir, "x.crt"), filepath.Join(dir, "x.key"), spec); err == nil {
			t.Errorf("EnsureLeaf accepted %+v", spec)
		}
		if _, _, err := ca.Issue(spec); err == nil {
			t.Errorf("Issue accepted %+v", spec)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.crt")); err == nil {
		t.Error("a rejected spec still wrote a certificate")
	}
}

func TestIssueWritesNothing(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	entries, _ := os.ReadDir(dir)

	certPEM, keyPEM, err := ca.Issue(LeafSpec{CommonName: "system:node:n1", Organization: []string{"system:nodes"}, Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadDir(dir); len(after) != len(entries) {
		t.Errorf("Issue wrote files: %d entries before, %d after", len(entries), len(after))
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !samePublicKey(key.Public(), certs[0].PublicKey) {
		t.Fatal("issued key does not match issued certificate")
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM block is not PKCS#8 PRIVATE KEY")
	}
	if err := certs[0].CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("issued certificate not signed by CA: %v", err)
	}
}

func TestLeafClampedToCAExpiry(t *testing.T) {
	ca := newTestCA(t, t.TempDir(), "ca")
	now := time.Now()
	certPEM, _, err := ca.issue(serverSpec(), now, ca.Cert.NotAfter.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if certs[0].NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v is after CA NotAfter %v", certs[0].NotAfter, ca.Cert.NotAfter)
	}
}

func TestEnsureKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sa")
	keyFile, pubFile := filepath.Join(dir, "service.key"), filepath.Join(dir, "service.pub")

	created, err := EnsureKey(keyFile, pubFile)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("EnsureKey did not create a missing key")
	}
	checkMode(t, dir, 0o700)
	checkMode(t, keyFile, 0o600)
	checkMode(t, pubFile, 0o644)

	keyPEM, _ := os.ReadFile(keyFile)
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("key file is not a PKCS#8 PRIVATE KEY block")
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(pubFile)
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatal("public key file is not a PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !samePublicKey(key.Public(), pub) {
		t.Fatal("public key file does not match the private key")
	}

	created, err = EnsureKey(keyFile, pubFile)
	if err != nil || created {
		t.Fatalf("second EnsureKey: created=%v err=%v", created, err)
	}
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(again, keyPEM) {
		t.Fatal("existing key was replaced")
	}

	// A lost public key is restored from the private key.
	if err := os.Remove(pubFile); err != nil {
		t.Fatal(err)
	}
	if created, err := EnsureKey(keyFile, pubFile); err != nil || created {
		t.Fatalf("EnsureKey after removing pub: created=%v err=%v", created, err)
	}
	if again, _ := os.ReadFile(pubFile); !bytes.Equal(again, pubPEM) {
		t.Fatal("public key not restored")
	}

	// Without pubFile only the key is handled.
	solo := filepath.Join(dir, "solo.key")
	if created, err := EnsureKey(solo, ""); err != nil || !created {
		t.Fatalf("EnsureKey without pub: created=%v err=%v", created, err)
	}

	// A corrupt key is an error, never silently replaced.
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureKey(keyFile, pubFile); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("EnsureKey on a corrupt key: err=%v, want an error naming the file", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "f")
	if err := WriteFileAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, path, 0o600)
	if err := WriteFileAtomic(path, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o644)
	if data, _ := os.ReadFile(path); string(data) != "two" {
		t.Fatalf("content = %q", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestLoadCertPool(t *testing.T) {
	dir := t.TempDir()
	a := newTestCA(t, dir, "a")
	b := newTestCA(t, dir, "b")
	certA, _ := caFiles(dir, "a")
	certB, _ := caFiles(dir, "b")

	p, err := LoadCertPool(certA, certB)
	if err != nil {
		t.Fatal(err)
	}
	for _, ca := range []*CA{a, b} {
		certPEM, _, err := ca.Issue(LeafSpec{CommonName: "c", Usage: ClientAuth})
		if err != nil {
			t.Fatal(err)
		}
		certs, _ := parseCertsPEM(certPEM)
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: p, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("leaf of %s does not verify against pool: %v", ca.Cert.Subject.CommonName, err)
		}
	}

	if _, err := LoadCertPool(filepath.Join(dir, "missing.crt")); err == nil {
		t.Error("LoadCertPool accepted a missing file")
	}
	empty := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(empty, []byte("nothing here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCertPool(certA, empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("LoadCertPool on a file without certificates: err=%v, want an error naming it", err)
	}
}
