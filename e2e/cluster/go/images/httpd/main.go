// Command httpd is a tiny HTTP server for the e2e cluster's smoke check: GET / answers
// "stowage-e2e <hostname>" so that a caller can see which pod served it.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("listen", ":8080", "address to listen on")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "stowage-e2e %s\n", host)
	})
	log.Printf("httpd: listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
