package ingress

import (
	"github.com/valyala/fasthttp"

	"github.com/socialbridge/bridge/bridge/failure"
)

// knownMethods answers a request whose method Fiber does not know as the wrong method it is,
// through the error handler like every other answer (JSON, 405, Allow: POST, counted).
// Fiber itself would answer it a bare text 400 past the error handler.
func (s *Server) knownMethods(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if knownMethod(ctx.Method()) {
			next(ctx)
			unreadBody(ctx)
			return
		}
		unreadBody(ctx)
		c := s.app.AcquireCtx(ctx)
		defer s.app.ReleaseCtx(c)
		// The method is not echoed: it is whatever bytes the client sent.
		_ = s.handleError(c, failure.New(failure.WrongMethod, "unknown method: webhooks are POSTed"))
	}
}

// knownMethod reports whether Fiber routes method: its default methods.
func knownMethod(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodDelete,
		fasthttp.MethodConnect, fasthttp.MethodOptions, fasthttp.MethodTrace, fasthttp.MethodPatch:
		return true
	}
	return false
}

// unreadBody closes the connection of a request whose body no handler read (only the
// webhooks' read theirs, see admit): its bytes would be taken for the next request.
func unreadBody(ctx *fasthttp.RequestCtx) {
	if ctx.Request.Header.ContentLength() != 0 && ctx.Request.BodyStream() != nil {
		ctx.SetConnectionClose()
	}
}
