// Command agentprobe is the agent of the compose stack and the container
// tests: one HTTPS request made the way an agent makes it, through
// HTTPS_PROXY and trusting SSL_CERT_FILE (both from agent-env's output),
// carrying a placeholder credential of its own. It prints the status line
// and body and exits non-zero unless the answer is 200.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	auth := flag.String("authorization", "Bearer agent-placeholder", "the agent's own Authorization header, which the egress must strip")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	method := flag.String("method", http.MethodGet, "the request's method")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: agentprobe [-authorization VALUE] [-method METHOD] URL")
		os.Exit(2)
	}
	code, err := probe(*method, flag.Arg(0), *auth, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentprobe:", err)
		os.Exit(1)
	}
	if code != http.StatusOK {
		os.Exit(1)
	}
}

func probe(method, url, auth string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	// Every credential header an agent might hold: the egress must strip
	// them all (or replace Authorization with the host's).
	req.Header.Set("Authorization", auth)
	req.Header.Set("Proxy-Authorization", "Basic YWdlbnQ6cGxhY2Vob2xkZXI=")
	req.Header.Set("X-Api-Key", "agent-placeholder-key")
	// The default transport reads HTTPS_PROXY; Go reads SSL_CERT_FILE.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	fmt.Printf("%s\n%s", resp.Status, body)
	return resp.StatusCode, nil
}
