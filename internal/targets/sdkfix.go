package targets

import (
	"context"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const plainBodyID = "ipsync.PlainRequestBody"

// PlainRequestBody works around a race between smithy-go and net/http that closes a connection in the middle of a
// good answer ("use of closed network connection", "failed to decode response body"), which the SDK then
// retries: a retry that costs a token of the API budget and, at worst, fails the call.
//
// net/http, after writing a request body of known length, reads the body once more to check that nothing is left.
// smithy-go closes the body as soon as the response headers arrive, and its closed body's WriteTo answers io.EOF
// where Read would answer a clean end: when the answer comes back before that last read (a fast endpoint on the
// same host, or a loaded client), net/http takes io.EOF for a failed write and closes the connection the answer is
// still arriving on. Large answers (a DescribeTargetGroups page) show it most, small ones only lose the connection
// for reuse.
//
// The stack mutator hides WriteTo from the body for the attempt being sent (it runs after the retry step, on each
// attempt's own copy of the request), so net/http reads it with Read, which ends cleanly. It changes no byte sent
// and no signature.
func PlainRequestBody(s *middleware.Stack) error {
	if _, ok := s.Finalize.Get(plainBodyID); ok {
		return nil
	}
	return s.Finalize.Add(middleware.FinalizeMiddlewareFunc(plainBodyID, func(ctx context.Context, in middleware.FinalizeInput,
		next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok && req.GetStream() != nil {
			plain, err := req.SetStream(readOnly{req.GetStream()})
			if err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
			in.Request = plain
		}
		return next.HandleFinalize(ctx, in)
	}), middleware.After)
}

// readOnly is a reader with nothing but Read.
type readOnly struct{ r io.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
