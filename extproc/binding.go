package extproc

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/metadata"

	"github.com/egressgate/egressgate/extprocapi"
)

// binding is what the matched route asks of one request: the binding as
// the metadata carried it, with its strip list split and completed.
type binding struct {
	extprocapi.Binding
	strip []string
	// dlpMax is DLPMax as a number of bytes (0 with DLP off).
	dlpMax int
}

// parse makes the server's binding from what the metadata carried: the
// strip list split and completed, the binding checked. It depends on k
// alone, so its result can be kept for the next stream with the same
// metadata.
func parse(k extprocapi.Binding) (binding, error) {
	if err := k.Validate(); err != nil {
		return binding{Binding: k, strip: stripList(k.Strip)}, err
	}
	max, _ := strconv.Atoi(k.DLPMax) // Validate checked it
	return binding{Binding: k, strip: stripList(k.Strip), dlpMax: max}, nil
}

// parsedBinding is a binding's parse result.
type parsedBinding struct {
	b   binding
	err error
}

// bindingCache keeps parsed bindings by their metadata. Envoy sends the
// same few bindings (one per route) on every stream; parsing the strip
// list each time was a tenth of a request's Go time. Entries are never
// changed once stored, and the strip lists they hold are shared: callers
// clone before appending. The metadata comes from egressgate's own route
// configuration, after the caller key was checked, so its variety is
// bounded by the routes; the cap only guards against a bug.
type bindingCache struct {
	entries sync.Map // extprocapi.Binding -> parsedBinding
	size    atomic.Int32
}

const bindingCacheMax = 4096

// get reads the route binding from the stream's initial metadata. An
// error means Envoy was configured wrongly; the caller refuses the
// request rather than guess.
func (c *bindingCache) get(ctx context.Context) (binding, error) {
	k, err := extprocapi.ReadBinding(func(key string) []string {
		// ValueFromIncomingContext, unlike FromIncomingContext, does not
		// copy the stream's whole metadata: this runs on every request.
		return metadata.ValueFromIncomingContext(ctx, key)
	})
	if err != nil {
		return binding{Binding: extprocapi.Binding{Host: k.Host}}, err
	}
	if v, ok := c.entries.Load(k); ok {
		p := v.(parsedBinding)
		return p.b, p.err
	}
	b, err := parse(k)
	if c.size.Load() < bindingCacheMax {
		if _, loaded := c.entries.LoadOrStore(k, parsedBinding{b, err}); !loaded {
			c.size.Add(1)
		}
	}
	return b, err
}

// stripList is the route's strip list, always with the two Authorization
// headers: they are removed even from a route whose binding lacks a list.
func stripList(csv string) []string {
	out := []string{headerAuthorization, headerProxyAuthorization}
	for _, h := range strings.Split(csv, ",") {
		if h = strings.TrimSpace(strings.ToLower(h)); h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// label names the route in messages; host metadata is optional.
func (b binding) label() string {
	if b.Host == "" {
		return "this route"
	}
	return b.Host
}
