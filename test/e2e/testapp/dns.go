package main

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// serveDNS answers A queries for the given names (name=ip) over UDP and
// NXDOMAIN for anything else: the upstream resolver of a test network.
func serveDNS(addr string, records []string) error {
	answers := map[string]netip.Addr{}
	for _, r := range records {
		name, ip, ok := strings.Cut(r, "=")
		a, err := netip.ParseAddr(ip)
		if !ok || err != nil || !a.Is4() {
			return fmt.Errorf("record %q: want name=IPv4", r)
		}
		answers[strings.ToLower(strings.TrimSuffix(name, "."))+"."] = a
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	log.Printf("testapp dns on %s with %d names", addr, len(answers))
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		reply, name, err := answer(buf[:n], answers)
		if err != nil {
			log.Printf("dns: bad query from %s: %v", from, err)
			continue
		}
		log.Printf("dns: %s asked %s", from, name)
		if _, err := pc.WriteTo(reply, from); err != nil {
			log.Printf("dns: reply to %s: %v", from, err)
		}
	}
}

func answer(query []byte, answers map[string]netip.Addr) ([]byte, string, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, "", err
	}
	q, err := p.Question()
	if err != nil {
		return nil, "", err
	}
	name := strings.ToLower(q.Name.String())
	resp := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true},
		Questions: []dnsmessage.Question{q},
	}
	ip, ok := answers[name]
	switch {
	case !ok:
		resp.Header.RCode = dnsmessage.RCodeNameError
	case q.Type == dnsmessage.TypeA:
		resp.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 30},
			Body:   &dnsmessage.AResource{A: ip.As4()},
		}}
	}
	out, err := resp.Pack()
	return out, name, err
}
