package media

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
)

// mediamtxConfigName is the file the node writes into MediaMTXConfig.Dir.
const mediamtxConfigName = "mediamtx.yml"

// mediamtxSettings are the values that vary between nodes.
type mediamtxSettings struct {
	RTMPAddr, RTSPAddr, SRTAddr, APIAddr string
	AuthURL                              string
	// WebRTCAddr is the WHIP (HTTP) listener, "" = no WebRTC server;
	// WebRTCUDPAddr the one UDP port every ICE session shares.
	WebRTCAddr, WebRTCUDPAddr string
	// WebRTCHosts are offered as ICE candidates besides the interfaces'
	// addresses (the node's advertised address, for clients behind NAT).
	WebRTCHosts []string
	// RTSPSAddr, when set, adds an RTSPS listener (other nodes read
	// streams there) serving CertFile and KeyFile.
	RTSPSAddr, CertFile, KeyFile string
}

// The RTSPS certificate and key files, written next to the config.
const (
	serverCertName = "rtsps.crt"
	serverKeyName  = "rtsps.key"
)

// writePrivate writes data to dir/name, readable by this user only, and
// returns the path. Written through a temporary file, so a mediamtx
// started at the same moment never reads half a file.
func writePrivate(dir, name string, data []byte) (string, error) {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return "", err
	}
	// WriteFile keeps the mode of a file that was there already.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

// The config turns off every server and listener we do not use. mediamtx
// opens a port for each enabled feature, and several nodes share one machine
// in tests, so the only sockets must be the ingest listeners (RTMP and RTSP
// over TCP, SRT over UDP, WebRTC: WHIP over HTTP and ICE over one UDP port)
// and the loopback control API:
//   - rtspTransports [tcp]: no UDP RTP/RTCP (rtpAddress, rtcpAddress) and no
//     multicast ports; encryption "no" (or "optional" in TLS mode: an RTSPS
//     listener besides RTSP, no SRTP listeners since there is no UDP);
//   - rtmpEncryption "no": no RTMPS listener;
//   - webrtc: ICE over the one UDP port only (no per-session random UDP
//     ports, no TCP listener), no TLS (put a TLS proxy in front, as for
//     the HTTP API), no STUN/TURN servers (the node's own addresses are
//     the candidates);
//   - hls, playback, metrics, pprof: off.
//
// WebRTC is publish only (WHIP): mediamtx's WebRTC server also answers
// WHEP reads and serves publish and read pages, but every read goes
// through the auth hook, which allows the node's own credentials only.
//
// Every publish and read is decided by the node through authHTTPAddress,
// and so is every control API call: the API listens on loopback only, but
// it can rewrite the whole config, so it needs the node's API password.
// overridePublisher lets a reconnecting encoder take its path over at once
// instead of being refused until the old connection times out.
var mediamtxConfigTemplate = template.Must(template.New("mediamtx.yml").Funcs(template.FuncMap{"q": yamlQuote}).Parse(`# Written by dionysia; rewritten at every start. Do not edit.
logLevel: info
logDestinations: [stdout]
readTimeout: 10s
writeTimeout: 10s

authMethod: http
authHTTPAddress: {{q .AuthURL}}
authHTTPExclude:
  - action: metrics
  - action: pprof

api: yes
apiAddress: {{q .APIAddr}}
metrics: no
pprof: no
playback: no

rtsp: yes
rtspTransports: [tcp]
{{- if .RTSPSAddr}}
rtspEncryption: "optional"
rtspsAddress: {{q .RTSPSAddr}}
rtspServerCert: {{q .CertFile}}
rtspServerKey: {{q .KeyFile}}
{{- else}}
rtspEncryption: "no"
{{- end}}
rtspAddress: {{q .RTSPAddr}}

rtmp: yes
rtmpEncryption: "no"
rtmpAddress: {{q .RTMPAddr}}

hls: no
{{- if .WebRTCAddr}}
webrtc: yes
webrtcAddress: {{q .WebRTCAddr}}
webrtcEncryption: no
webrtcAllowOrigin: "*"
webrtcLocalUDPAddress: {{q .WebRTCUDPAddr}}
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: yes
webrtcAdditionalHosts: [{{range $i, $h := .WebRTCHosts}}{{if $i}}, {{end}}{{q $h}}{{end}}]
webrtcICEServers2: []
{{- else}}
webrtc: no
{{- end}}

srt: yes
srtAddress: {{q .SRTAddr}}

pathDefaults:
  overridePublisher: yes

paths:
  all_others: {}
`))

// renderMediaMTXConfig returns the YAML of the config.
func renderMediaMTXConfig(s mediamtxSettings) ([]byte, error) {
	var b bytes.Buffer
	if err := mediamtxConfigTemplate.Execute(&b, s); err != nil {
		return nil, fmt.Errorf("render mediamtx config: %w", err)
	}
	return b.Bytes(), nil
}

// writeMediaMTXConfig writes the config into dir.
func writeMediaMTXConfig(dir string, s mediamtxSettings) (string, error) {
	data, err := renderMediaMTXConfig(s)
	if err != nil {
		return "", err
	}
	// The config names the auth hook's address and, with TLS, the key
	// file: the node's user only.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write mediamtx config: %w", err)
	}
	path, err := writePrivate(dir, mediamtxConfigName, data)
	if err != nil {
		return "", fmt.Errorf("write mediamtx config: %w", err)
	}
	return path, nil
}

// yamlQuote makes any string a YAML double-quoted scalar; Go's quoting
// escapes are a subset of YAML's.
func yamlQuote(s string) string { return strconv.Quote(s) }
