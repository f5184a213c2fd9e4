package main

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"time"
)

const dialTimeout = 5 * time.Second

func serve(ctx context.Context, c config) error {
	addr := ":" + strconv.Itoa(c.srcPort)
	if c.proto == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); pc.Close() }()
		return serveUDP(ctx, c, pc)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	return serveTCP(ctx, c, ln)
}

func serveTCP(ctx context.Context, c config, ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !c.allowed(conn.RemoteAddr()) {
			conn.Close()
			continue
		}
		go proxyTCP(conn, c.targets())
	}
}

// proxyTCP joins a client to the first target that answers.
func proxyTCP(client net.Conn, targets []string) {
	defer client.Close()
	var backend net.Conn
	var err error
	for _, t := range targets {
		if backend, err = net.DialTimeout("tcp", t, dialTimeout); err == nil {
			break
		}
	}
	if backend == nil {
		log.Printf("svclb: no target answers for %s: %v", client.RemoteAddr(), err)
		return
	}
	defer backend.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	<-done
}

// udpIdle ends a client's UDP session after this long without traffic.
const udpIdle = 2 * time.Minute

// serveUDP keeps one backend socket per client address, so replies go
// back to the client that asked.
func serveUDP(ctx context.Context, c config, pc net.PacketConn) error {
	var mu sync.Mutex
	sessions := map[string]net.Conn{}
	buf := make([]byte, 64*1024)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !c.allowed(from) {
			continue
		}
		key := from.String()
		mu.Lock()
		backend, ok := sessions[key]
		if !ok {
			backend = dialUDP(c.targets())
			if backend != nil {
				sessions[key] = backend
				go func() {
					replyUDP(pc, backend, from)
					mu.Lock()
					delete(sessions, key)
					mu.Unlock()
					backend.Close()
				}()
			}
		}
		mu.Unlock()
		if backend != nil {
			_, _ = backend.Write(buf[:n])
		}
	}
}

func dialUDP(targets []string) net.Conn {
	for _, t := range targets {
		if conn, err := net.Dial("udp", t); err == nil {
			return conn
		}
	}
	return nil
}

func replyUDP(pc net.PacketConn, backend net.Conn, client net.Addr) {
	buf := make([]byte, 64*1024)
	for {
		_ = backend.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := backend.Read(buf)
		if err != nil {
			return
		}
		if _, err := pc.WriteTo(buf[:n], client); err != nil {
			return
		}
	}
}
