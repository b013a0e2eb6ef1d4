package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// nodes is the transport of a Client: every request, logins and renewals
// included, goes to the address in use; on a connection failure, a sealed
// node or a standby that cannot serve, the same request goes to the next
// address, and the first that answers becomes the one in use (one log
// line). A single address is sent to as it is.
//
// It also keeps Vault's Retry-After: after a 429, no request leaves until
// the time Vault named; one that would wait longer than maxGate gets a 429
// at once, without touching the network, so that its caller backs off.
type nodes struct {
	addrs []*url.URL
	cur   atomic.Int32
	next  http.RoundTripper
	log   *slog.Logger

	mu        sync.Mutex
	notBefore time.Time // from the last Retry-After
}

// maxGate is the longest a request waits for a Retry-After to pass before
// it fails as rate limited instead.
const maxGate = 5 * time.Second

func newNodes(addrs []string, next http.RoundTripper, log *slog.Logger) (*nodes, error) {
	n := &nodes{next: next, log: log}
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("vault address %q is not a URL", a)
		}
		n.addrs = append(n.addrs, u)
	}
	if len(n.addrs) == 0 {
		return nil, errors.New("no vault address")
	}
	return n, nil
}

// current is the address in use.
func (n *nodes) current() string { return n.addrs[n.cur.Load()].String() }

func (n *nodes) RoundTrip(req *http.Request) (*http.Response, error) {
	if resp, ok := n.gate(req); !ok {
		return resp, nil
	}
	if req.Response != nil {
		// A redirect (a standby's 307 to the active node): go where Vault
		// said, not back to the address in use, which sent it.
		resp, err := n.next.RoundTrip(req)
		n.limited(resp)
		return resp, err
	}
	body, err := replayable(req)
	if err != nil {
		return nil, err
	}
	start := int(n.cur.Load())
	var resp *http.Response
	for i := range n.addrs {
		idx := (start + i) % len(n.addrs)
		resp, err = n.send(req, n.addrs[idx], body)
		why := unusable(resp, err)
		if why == "" || i == len(n.addrs)-1 {
			if why == "" && idx != start && n.cur.CompareAndSwap(int32(start), int32(idx)) {
				n.log.Warn("vault address moved on", "from", n.addrs[start].String(), "to", n.addrs[idx].String())
			}
			n.limited(resp)
			return resp, err
		}
		n.log.Debug("vault address unusable", "addr", n.addrs[idx].String(), "why", why)
		if resp != nil {
			resp.Body.Close()
		}
	}
	return resp, err
}

// send sends req to addr, each attempt with its own request timeout, so
// that a node that hangs does not use up the others' time.
func (n *nodes) send(req *http.Request, addr *url.URL, body []byte) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host, r.Host = addr.Scheme, addr.Host, ""
	if body != nil {
		r.Body, r.GetBody = io.NopCloser(bytes.NewReader(body)), nil
		r.ContentLength = int64(len(body))
	}
	resp, err := n.next.RoundTrip(r)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// replayable reads a request body so that it can be sent again to the
// next address; Vault's bodies are small JSON.
func replayable(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// unusable says why an answer means "try the next address", or "". A 503
// is a node that cannot serve now, whatever its words; a 500 only when it
// carries Vault's own words for a standby that cannot serve (vault
// v1.19.0 http/handler.go, vault/request_forwarding.go): any other 500 is
// the request's own failure, which the next node would repeat.
func unusable(resp *http.Response, err error) string {
	if err != nil {
		if _, _, ok := tlsFailure(err); ok {
			return "" // the same certificate problem everywhere: say it
		}
		return "unreachable"
	}
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusInternalServerError {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var body struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(b, &body) // a body that is not Vault's JSON has none of its errors
	for _, e := range body.Errors {
		// In order: a sealed node (503); a standby that knows no active
		// node, when it would redirect (503) or forward (500); a node
		// removed from the cluster, when it forwards (500, a gRPC status).
		switch {
		case e == "Vault is sealed":
			return "sealed"
		case e == "no active Vault instance found", e == "local node not active but active cluster node not found",
			strings.Contains(e, "node is not in HA cluster membership"):
			return "standby without an active node"
		}
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return "unavailable"
	}
	return ""
}

// gate holds req until a Retry-After passed; ok false means it answered
// req with a 429 of its own.
func (n *nodes) gate(req *http.Request) (*http.Response, bool) {
	n.mu.Lock()
	wait := time.Until(n.notBefore)
	n.mu.Unlock()
	if wait <= 0 {
		return nil, true
	}
	if wait > maxGate {
		return limitedHere(req, wait), false
	}
	// Up to a second more, at random: every request held to the same
	// instant would meet Vault's next one-second quota window at the same
	// point of it, attempt after attempt, and a caller whose point comes
	// after the window is spent would never get through (an instance
	// starting under a quota that its fleet already exceeds).
	wait += rand.N(time.Second)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, true
	case <-req.Context().Done():
		return limitedHere(req, wait), false
	}
}

// limited records the Retry-After of a 429, at least a second: Vault
// rounds down the time left in its window, so a one-second quota says "0"
// and names none at all unless its response headers are on.
func (n *nodes) limited(resp *http.Response) {
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		return
	}
	after := time.Second
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 1 {
		after = time.Duration(s) * time.Second
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := time.Now().Add(after); t.After(n.notBefore) {
		n.notBefore = t
	}
}

// limitedHere is a 429 that never left the process.
func limitedHere(req *http.Request, wait time.Duration) *http.Response {
	body := fmt.Sprintf(`{"errors":["rate limited by Vault; retrying after %s"]}`, wait.Round(time.Second))
	return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}
}
