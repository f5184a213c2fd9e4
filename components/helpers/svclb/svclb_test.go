package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := fromEnv(envOf(map[string]string{"SRC_PORT": "80", "DEST_PROTO": "UDP", "DEST_PORT": "8080", "DEST_IPS": "10.43.0.5, fd00::5", "SRC_RANGES": "10.0.0.0/8"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.proto != "udp" || c.srcPort != 80 || strings.Join(c.targets(), ",") != "10.43.0.5:8080,[fd00::5]:8080" {
		t.Fatalf("config %+v", c)
	}
	if !c.allowed(&net.TCPAddr{IP: net.ParseIP("10.1.2.3")}) || c.allowed(&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}) {
		t.Fatal("source ranges not applied")
	}
	for _, bad := range []map[string]string{
		{"SRC_PORT": "x", "DEST_PORT": "1", "DEST_IPS": "10.0.0.1"},
		{"SRC_PORT": "1", "DEST_PORT": "1", "DEST_IPS": ""},
		{"SRC_PORT": "1", "DEST_PORT": "1", "DEST_IPS": "10.0.0.1", "DEST_PROTO": "SCTP"},
		{"SRC_PORT": "1", "DEST_PORT": "1", "DEST_IPS": "10.0.0.1", "SRC_RANGES": "nope"},
	} {
		if _, err := fromEnv(envOf(bad)); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A TCP client reaches the backend through the forwarder, both ways.
func TestForwardTCP(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	src := freePort(t)
	c, err := fromEnv(envOf(map[string]string{"SRC_PORT": strconv.Itoa(src), "DEST_PORT": strconv.Itoa(backend.Addr().(*net.TCPAddr).Port), "DEST_IPS": "127.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = serve(ctx, c) }()
	var conn net.Conn
	for i := 0; i < 50; i++ {
		if conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(src)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
}

// A UDP datagram's reply goes back to the client that sent it.
func TestForwardUDP(t *testing.T) {
	backend, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := backend.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = backend.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	src := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	c, err := fromEnv(envOf(map[string]string{"SRC_PORT": strconv.Itoa(src), "DEST_PROTO": "UDP",
		"DEST_PORT": strconv.Itoa(backend.LocalAddr().(*net.UDPAddr).Port), "DEST_IPS": "127.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = serve(ctx, c) }()
	conn, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(src))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 100)
	// Until the forwarder listens, a datagram may be refused at once.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, _ = conn.Write([]byte("q"))
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil {
			if string(buf[:n]) != "re:q" {
				t.Fatalf("reply %q", buf[:n])
			}
			return
		}
	}
	t.Fatal("no UDP reply through the forwarder")
}
