package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// writeCerts writes a CA and a certificate it signs for 127.0.0.1, as PEM
// files in dir: ca.pem, cert.pem, key.pem.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey, leafKey := key(), key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("cert.pem", "CERTIFICATE", leafDER)
	write("key.pem", "EC PRIVATE KEY", keyDER)
}

// The server's TLS options are NATS's: clients that trust its CA connect
// and run jobs; clients that do not are refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	writeCerts(t, dir)
	s, err := cluster.StartServer(context.Background(), cluster.ServerConfig{
		Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: testLogger(t),
		TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if !strings.HasPrefix(s.ClientURL(), "tls://") {
		t.Fatalf("ClientURL() = %s, want tls://", s.ClientURL())
	}
	n := cluster.NATS{URL: s.ClientURL(), TLSCA: filepath.Join(dir, "ca.pem")}
	w, err := cluster.StartWorker(context.Background(), cluster.WorkerConfig{NATS: n, Plugins: []pool.Config{doubleConfig(1)}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Terminate()
	e := startExecutor(t, cluster.Config{NATS: n, Plugin: "double"})
	rs, err := e.Map(context.Background(), testkit.Ints(100))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)
	_, err = cluster.ListWorkers(context.Background(), cluster.NATS{URL: s.ClientURL()})
	if !errors.Is(err, cluster.ErrConnect) {
		t.Fatalf("a client without the CA: %v, want ErrConnect", err)
	}
}
