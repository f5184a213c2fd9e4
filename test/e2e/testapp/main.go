// Command testapp is the workload of the end-to-end tests: a tiny HTTP
// server that answers with its host name, and a client mode to call one.
//
//	testapp serve :8080
//	testapp get http://10.42.1.5:8080/
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve ADDR | testapp get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			log.Printf("request %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
			fmt.Fprintf(w, "hello from %s\n", host)
		})
		log.Printf("testapp serving on %s as %s", os.Args[2], host)
		log.Fatal(http.ListenAndServe(os.Args[2], nil))
	case "get":
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(os.Stdout, resp.Body)
	default:
		os.Exit(2)
	}
}
