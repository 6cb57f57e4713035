// Package dashboard serves the operator's web UI at / on every node: plain
// HTML, CSS and JavaScript embedded in the binary, with no build step. The
// page talks to the node's own /v1 API (sending the API token the operator
// types in) and previews live inputs through their /live playback URLs with
// hls.js, which is not embedded: the node serves the copy `make deps`
// fetches, from Config.HLSJSPath.
//
// It owns no state and knows nothing about the cluster: everything it shows
// comes from the API in the browser. It must not import the other packages.
package dashboard
