package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/dionysia/dionysia/docs"
	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/webhook"
)

// openAPIDoc is the part of docs/openapi.yaml the tests read.
type openAPIDoc struct {
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(docs.OpenAPI, &doc), "docs/openapi.yaml must be valid YAML")
	var tree map[string]any
	require.NoError(t, yaml.Unmarshal(docs.OpenAPI, &tree))
	require.Equal(t, "3.0.3", tree["openapi"])
	return doc, tree
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// routerRoutes lists "METHOD /template" for every route the API serves.
// /live/ is answered before the router (ServeHTTP), so it is added by hand;
// /internal/ is cluster-internal and not part of the public API.
func routerRoutes(t *testing.T) []string {
	t.Helper()
	api, err := New(Config{
		Backend: newFakeBackend(t),
		Logger:  quietLogger(),
		Metrics: http.NotFoundHandler(),
	})
	require.NoError(t, err)
	var out []string
	err = api.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		if strings.HasPrefix(tpl, "/internal/") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s has no methods: %w", tpl, err)
		}
		for _, m := range methods {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	require.NoError(t, err)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		out = append(out, m+" /live/{input_id}/{file}", m+" /vod/{recording_id}/{file}")
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths {
		for key, op := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			documented = append(documented, strings.ToUpper(key)+" "+path)
			// /v1 needs the bearer token (the document's default); nothing
			// else does, and says so with an empty security list.
			sec, hasSec := op.(map[string]any)["security"]
			if strings.HasPrefix(path, "/v1/") {
				require.False(t, hasSec, "%s %s: /v1 operations use the document's bearer security", key, path)
			} else {
				require.True(t, hasSec, "%s %s: public operations need security: []", key, path)
				require.Empty(t, sec, "%s %s is not authenticated", key, path)
			}
		}
	}
	sort.Strings(documented)
	require.Equal(t, routerRoutes(t), documented, "docs/openapi.yaml and the router (httpapi/server.go routes) disagree")
}

// The schemas list exactly the JSON fields of the Go types the API encodes
// and decodes, so that a field added to a type shows up here.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	types := map[string]any{
		"Error":              apiError{},
		"Rendition":          fsm.Rendition{},
		"Profile":            fsm.Profile{},
		"ProfileWrite":       profileBody{},
		"Input":              inputView{},
		"InputCreate":        inputBody{},
		"InputPatch":         inputPatchBody{},
		"IngestLinks":        IngestLinks{},
		"PlaybackLinks":      PlaybackLinks{},
		"PlaybackURLRequest": playbackURLBody{},
		"InputStatus":        InputStatus{},
		"TranscoderStatus":   TranscoderStatus{},
		"RenditionStatus":    RenditionStatus{},
		"NodeInfo":           NodeInfo{},
		"ClusterInfo":        ClusterInfo{},
		"RaftServer":         RaftServer{},
		"Route":              Route{},
		"WebhookCreate":      webhookBody{},
		"Webhook":            webhookView{},
		"WebhookCreated":     webhookCreated{},
		"WebhookEvent":       fsm.Event{},
		"Delivery":           fsm.Attempt{},
		"PublishAuthRequest": webhook.AdmissionRequest{},
		"Recording":          recordingView{},
		"RecordingPatch":     recordingPatchBody{},
	}
	// renditionBody is what a client sends; it must stay fsm.Rendition's twin.
	require.Equal(t, jsonFields(reflect.TypeFor[fsm.Rendition]()), jsonFields(reflect.TypeFor[renditionBody]()))
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		require.True(t, ok, "schema %s is missing", name)
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		require.Equal(t, jsonFields(reflect.TypeOf(v)), props, "schema %s", name)
	}
}

// jsonFields lists the JSON names encoding/json uses for a struct type,
// embedded structs flattened.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIRefsResolve(t *testing.T) {
	_, tree := loadOpenAPI(t)
	components := tree["components"].(map[string]any)
	var walk func(at string, v any)
	refs := 0
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "$ref" {
					refs++
					ref, _ := c.(string)
					parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
					require.Len(t, parts, 2, "%s: $ref %q", at, ref)
					kind, _ := components[parts[0]].(map[string]any)
					require.Contains(t, kind, parts[1], "%s: $ref %q does not resolve", at, ref)
					continue
				}
				walk(at+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", at, i), c)
			}
		}
	}
	walk("", tree)
	require.Greater(t, refs, 20)
}

func TestOpenAPIServed(t *testing.T) {
	// Served without the API token: it documents how to get one right.
	e := newEnv(t, withTokens("tok"))
	rec := e.do(http.MethodGet, "/openapi.yaml", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	require.Equal(t, string(docs.OpenAPI), rec.Body.String())

	rec = e.do(http.MethodHead, "/openapi.yaml", nil)
	require.Equal(t, http.StatusOK, rec.Code)

	rec = e.do(http.MethodPost, "/openapi.yaml", nil)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}
