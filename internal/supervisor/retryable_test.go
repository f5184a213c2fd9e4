package supervisor

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRetryableLeaderChange(t *testing.T) {
	for _, c := range []struct {
		status     int
		body       string
		wantStatus int
		retryAfter string
	}{
		{500, `{"kind":"Status","message":"etcdserver: leader changed","code":500}`, 503, "1"},
		{500, `{"kind":"Status","message":"something else","code":500}`, 500, ""},
		{200, `{"kind":"ConfigMap"}`, 200, ""},
		{409, `{"kind":"Status","reason":"Conflict"}`, 409, ""},
	} {
		h := retryWhenLeaderChanged(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/namespaces/default/configmaps", nil))
		if rec.Code != c.wantStatus || rec.Header().Get("Retry-After") != c.retryAfter || rec.Body.String() != c.body {
			t.Errorf("%d %q: got %d retry-after %q body %q", c.status, c.body, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
}
