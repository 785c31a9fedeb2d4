package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logFile keeps a container's output as "<RFC3339Nano> <line>" lines, as the CRI log format does.
type logFile struct {
	mu   sync.Mutex
	f    *os.File
	path string
	part []byte
}

func newLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f, path: path}, nil
}

func (l *logFile) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, b...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(l.f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), l.part[:i])
		l.part = l.part[i+1:]
	}
}

// logServer serves GET /containerLogs/{namespace}/{pod}/{container} over HTTPS on the Node's
// kubelet endpoint: what the API server's pods/log calls (sinceTime, sinceSeconds, timestamps,
// tailLines honoured).
func (k *kubelet) logServer() (*http.Server, error) {
	cert, err := selfSigned(k.cfg.nodeName, k.cfg.nodeIP)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		lp := k.byName[r.PathValue("ns")+"/"+r.PathValue("pod")]
		k.mu.Unlock()
		if lp == nil || lp.logs == nil {
			http.Error(w, "no such pod on this node", http.StatusNotFound)
			return
		}
		f, err := os.Open(lp.logs.path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "text/plain")
		writeLogs(w, f, r.URL.Query(), time.Now())
	})
	addr := net.JoinHostPort(k.cfg.nodeIP, strconv.Itoa(k.cfg.logsPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("log server on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
			log.Printf("log server: %v", err)
		}
	}()
	return srv, nil
}

// writeLogs copies the stored lines selected by the pods/log query parameters.
func writeLogs(w io.Writer, stored io.Reader, q url.Values, now time.Time) {
	var since time.Time
	if s := q.Get("sinceTime"); s != "" {
		since, _ = time.Parse(time.RFC3339, s)
	}
	if n, err := strconv.Atoi(q.Get("sinceSeconds")); err == nil {
		since = now.Add(-time.Duration(n) * time.Second)
	}
	withTS := q.Get("timestamps") == "true"
	var lines []string
	sc := bufio.NewScanner(stored)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		ts, line, _ := strings.Cut(sc.Text(), " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && !since.IsZero() && t.Before(since) {
			continue
		}
		if withTS {
			line = ts + " " + line
		}
		lines = append(lines, line)
	}
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		_, _ = io.WriteString(w, l+"\n")
	}
}

func selfSigned(name, ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP(ip)}, DNSNames: []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
