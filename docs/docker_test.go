package docs

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// No Docker engine runs the tests: these check what can be checked from the
// text of Dockerfile and docker-compose.yml against the node's flags.

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../" + path)
	require.NoError(t, err)
	return string(b)
}

// nodeDefaultPorts reads the listen-address defaults of `dionysia node`
// from cmd/dionysia/node.go: "http" -> 8080, ...
func nodeDefaultPorts(t *testing.T) map[string]int {
	t.Helper()
	src := readRepoFile(t, "cmd/dionysia/node.go")
	re := regexp.MustCompile(`f\.str\(&cfg\.\w+, "([\w-]+)-addr", ":(\d+)"`)
	out := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		p, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		out[m[1]] = p
	}
	for _, k := range []string{"http", "gossip", "raft", "rtmp", "rtsp", "rtsps", "srt", "webrtc", "webrtc-udp"} {
		require.Contains(t, out, k, "no --%s-addr default found in cmd/dionysia/node.go", k)
	}
	return out
}

func TestDockerfileExposesTheNodeDefaults(t *testing.T) {
	ports := nodeDefaultPorts(t)
	df := readRepoFile(t, "Dockerfile")
	var exposed []string
	for _, line := range strings.Split(df, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "EXPOSE "); ok {
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp" // Docker's default
				}
				exposed = append(exposed, p)
			}
		}
	}
	p := func(name, proto string) string { return strconv.Itoa(ports[name]) + "/" + proto }
	want := []string{
		p("http", "tcp"), p("gossip", "tcp"), p("gossip", "udp"), p("raft", "tcp"),
		p("rtmp", "tcp"), p("rtsp", "tcp"), p("rtsps", "tcp"), p("srt", "udp"),
		p("webrtc", "tcp"), p("webrtc-udp", "udp"),
	}
	sort.Strings(want)
	sort.Strings(exposed)
	require.Equal(t, want, exposed, "EXPOSE must list the node's default ports (memberlist uses TCP and UDP, SRT and WebRTC media are UDP)")

	require.Contains(t, df, `ENTRYPOINT ["dionysia", "node", "--data-dir", "/data", "--mediamtx", "/usr/local/bin/mediamtx"]`)
	require.Regexp(t, `(?m)^VOLUME /data$`, df)
	require.Regexp(t, `(?m)^USER dionysia$`, df, "the node must not run as root")
	require.Regexp(t, `(?m)^FROM golang:1\.26-bookworm AS `, df)
	require.Regexp(t, `(?m)^FROM debian:bookworm-slim$`, df)
}

// The image builds mediamtx and fetches hls.js at the versions `make deps`
// uses, so that the image runs what the tests ran.
func TestDockerfilePinsTheDepsVersions(t *testing.T) {
	deps := readRepoFile(t, "scripts/deps.sh")
	df := readRepoFile(t, "Dockerfile")
	for _, name := range []string{"MEDIAMTX_VERSION", "MEDIAMTX_HLSJS_VERSION", "HLSJS_VERSION"} {
		m := regexp.MustCompile(name + `="\$\{` + name + `:-([^}]+)\}"`).FindStringSubmatch(deps)
		require.NotNil(t, m, "no default for %s in scripts/deps.sh", name)
		require.Regexp(t, `(?m)^ARG `+name+`=`+regexp.QuoteMeta(m[1])+`$`, df, "%s differs from scripts/deps.sh", name)
	}
}

type composeFile struct {
	Services map[string]struct {
		Command   []string       `yaml:"command"`
		Ports     []string       `yaml:"ports"`
		Volumes   []string       `yaml:"volumes"`
		DependsOn []string       `yaml:"depends_on"`
		Build     any            `yaml:"build"`
		Env       map[string]any `yaml:"environment"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeStartsThreeJoinedNodes(t *testing.T) {
	var cf composeFile
	require.NoError(t, yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &cf))
	require.Len(t, cf.Services, 3)
	defaults := nodeDefaultPorts(t)

	hostPorts := map[string]string{} // "8081/tcp" -> service
	bootstrappers := 0
	for name, svc := range cf.Services {
		require.NotNil(t, svc.Build, "%s builds the image", name)
		flags := map[string]string{}
		for _, arg := range svc.Command {
			k, v, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			require.True(t, ok && strings.HasPrefix(arg, "--"), "%s: write flags as --name=value: %q", name, arg)
			flags[k] = v
		}
		require.Equal(t, name, flags["name"], "%s: node name", name)
		require.Equal(t, name, flags["advertise-host"], "%s: advertises its service name", name)

		if join, ok := flags["join"]; ok {
			for _, target := range strings.Split(join, ",") {
				host, port, ok := strings.Cut(target, ":")
				require.True(t, ok, "%s: --join %q needs host:port", name, target)
				require.Contains(t, cf.Services, host, "%s: --join target %q is not a service", name, host)
				require.NotEqual(t, name, host, "%s joins itself", name)
				require.Equal(t, strconv.Itoa(defaults["gossip"]), port, "%s: --join must use the gossip port", name)
				require.Contains(t, svc.DependsOn, host, "%s: start after the node it joins", name)
			}
		} else {
			bootstrappers++
		}

		// Every listener is published on the port it listens on, so that
		// the advertised URLs are also right from the host.
		published := map[string]bool{}
		for _, p := range svc.Ports {
			hostPort, rest, ok := strings.Cut(p, ":")
			require.True(t, ok, "%s: port %q needs host:container", name, p)
			require.Equal(t, hostPort, strings.Split(rest, "/")[0], "%s: %q publishes a different port than it listens on", name, p)
			key := rest
			if !strings.Contains(key, "/") {
				key += "/tcp"
			}
			require.NotContains(t, hostPorts, key, "%s: host port %s also used by %s", name, key, hostPorts[key])
			hostPorts[key] = name
			published[key] = true
		}
		for listener, proto := range map[string]string{"http": "tcp", "rtmp": "tcp", "rtsp": "tcp", "srt": "udp"} {
			addr, ok := flags[listener+"-addr"]
			require.True(t, ok, "%s: --%s-addr not set", name, listener)
			require.True(t, published[strings.TrimPrefix(addr, ":")+"/"+proto], "%s: --%s-addr=%s is not published (%s)", name, listener, addr, proto)
		}

		require.Equal(t, "http://127.0.0.1"+flags["http-addr"], svc.Env["DIONYSIA_ADDR"], "%s: the CLI in the container finds its node", name)
		require.Contains(t, svc.Env, "DIONYSIA_API_TOKEN", "%s: shares the token setting", name)

		require.Len(t, svc.Volumes, 1, "%s: one data volume", name)
		vol, target, _ := strings.Cut(svc.Volumes[0], ":")
		require.Equal(t, "/data", target, "%s: the volume holds the data dir", name)
		require.Contains(t, cf.Volumes, vol, "%s: %q is not a named volume", name, vol)
	}
	require.Equal(t, 1, bootstrappers, "exactly one node bootstraps (no --join)")

	// The host ports the README promises.
	var got []string
	for p := range hostPorts {
		got = append(got, p)
	}
	want := []string{}
	for i := range 3 {
		want = append(want, strconv.Itoa(8081+i)+"/tcp", strconv.Itoa(1935+i)+"/tcp", strconv.Itoa(8554+i)+"/tcp", strconv.Itoa(8890+i)+"/udp")
	}
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got)
}
