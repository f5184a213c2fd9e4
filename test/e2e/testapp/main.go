// Command testapp is the workload of the end-to-end tests: a tiny HTTP
// server that answers with its host name, a client mode to call one, name
// lookups through the pod's resolver, file writes and reads for volumes,
// and a small DNS server for a test network's "outside" resolver.
//
//	testapp serve :8080
//	testapp get http://10.42.1.5:8080/
//	testapp lookup kubernetes.default
//	testapp query 10.43.0.10:53 kubernetes.default.svc.cluster.local
//	testapp write /data/file TEXT
//	testapp read /data/file
//	testapp dns :53 name=ip [name=ip ...]
//	testapp sink :9000                  (TCP: discard, or echo after an 'e')
//	testapp blast 10.42.1.5:9000 SECONDS (throughput to a sink)
//	testapp rtt 10.42.1.5:9000 COUNT     (round trips to a sink)
//	testapp probe 10.42.1.5:9000         (prints when new connections start or stop getting through)
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve ADDR | get URL | lookup NAME | query SERVER NAME | write PATH TEXT | read PATH | dns ADDR name=ip...")
		os.Exit(2)
	}
	arg := os.Args[2]
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			log.Printf("request %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
			fmt.Fprintf(w, "hello from %s\n", host)
		})
		log.Printf("testapp serving on %s as %s", arg, host)
		log.Fatal(http.ListenAndServe(arg, nil))
	case "get":
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(arg)
		if err != nil {
			fail(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(os.Stdout, resp.Body)
	case "lookup":
		// The Go resolver reads the pod's resolv.conf: search domains, ndots.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, arg)
		if err != nil {
			fail(err)
		}
		fmt.Println(strings.Join(addrs, " "))
	case "query":
		// One DNS server asked directly, as from a host outside the pods.
		if len(os.Args) < 4 {
			os.Exit(2)
		}
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, arg)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		addrs, err := r.LookupHost(ctx, os.Args[3])
		if err != nil {
			fail(err)
		}
		fmt.Println(strings.Join(addrs, " "))
	case "write":
		if len(os.Args) < 4 {
			os.Exit(2)
		}
		if err := os.WriteFile(arg, []byte(os.Args[3]), 0o644); err != nil {
			fail(err)
		}
	case "read":
		data, err := os.ReadFile(arg)
		if err != nil {
			fail(err)
		}
		os.Stdout.Write(data)
	case "dns":
		if err := serveDNS(arg, os.Args[3:]); err != nil {
			fail(err)
		}
	case "sink":
		fail(sink(arg))
	case "probe":
		fail(probe(arg))
	case "blast", "rtt":
		if len(os.Args) < 4 {
			os.Exit(2)
		}
		f := blast
		if os.Args[1] == "rtt" {
			f = rtt
		}
		if err := f(arg, os.Args[3]); err != nil {
			fail(err)
		}
	default:
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
