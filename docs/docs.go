// Package docs holds the documents that ship with the binary: the OpenAPI
// description of the HTTP API, served at GET /openapi.yaml. It imports
// nothing of the project, so any package may embed from it.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the OpenAPI 3 description of every route.
//
//go:embed openapi.yaml
var OpenAPI []byte
