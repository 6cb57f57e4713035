package httpapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/fsm"
)

func TestCreateAndGetProfile(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodPost, "/v1/profiles", validProfile())
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	p := decodeBody[fsm.Profile](t, rec)
	require.True(t, isID(p.ID), p.ID)
	require.Equal(t, "/v1/profiles/"+p.ID, rec.Header().Get("Location"))
	require.Equal(t, "Ladder", p.Name)
	require.Equal(t, 2, p.SegmentSeconds)
	require.Equal(t, "veryfast", p.VideoPreset)
	require.Equal(t, fsm.SegmentFMP4, p.SegmentFormat)
	require.Equal(t, fsm.LatencyLow, p.Latency)
	require.Equal(t, 334, p.PartMs)
	require.False(t, p.CreatedAt.IsZero())

	got := decodeBody[fsm.Profile](t, e.do(http.MethodGet, "/v1/profiles/"+p.ID, nil))
	require.Equal(t, p, got)

	requireAPIError(t, e.do(http.MethodGet, "/v1/profiles/nope", nil), http.StatusNotFound, "id")

	// A chosen id that is taken: 409, and the existing profile is untouched.
	body := validProfile()
	body.ID, body.Name = "default", "Hijack"
	requireAPIError(t, e.do(http.MethodPost, "/v1/profiles", body), http.StatusConflict, "id")
	require.Equal(t, "Default", e.b.State().Profile("default").Name)
}

func TestListProfiles(t *testing.T) {
	e := newEnv(t)
	e.createProfile("low")
	list := decodeBody[struct {
		Profiles         []fsm.Profile `json:"profiles"`
		DefaultProfileID string        `json:"default_profile_id"`
	}](t, e.do(http.MethodGet, "/v1/profiles", nil))
	require.Equal(t, "default", list.DefaultProfileID)
	require.Len(t, list.Profiles, 2)
	require.Equal(t, "default", list.Profiles[0].ID)
	require.Equal(t, "low", list.Profiles[1].ID)
}

func TestPutProfile(t *testing.T) {
	e := newEnv(t)
	e.createProfile("low")
	before := e.b.State().Profile("low")

	body := validProfile()
	body.Name = "Replaced"
	body.SegmentSeconds = 4
	body.Renditions = body.Renditions[1:]
	rec := e.do(http.MethodPut, "/v1/profiles/low", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := decodeBody[fsm.Profile](t, rec)
	require.Equal(t, "low", got.ID)
	require.Equal(t, "Replaced", got.Name)
	require.Equal(t, 4, got.SegmentSeconds)
	require.Len(t, got.Renditions, 1)
	require.True(t, got.CreatedAt.Equal(before.CreatedAt), "created_at survives a replace")
	require.False(t, got.UpdatedAt.Before(before.UpdatedAt))
	require.Equal(t, "Replaced", e.b.State().Profile("low").Name)

	// The id may be repeated in the body, but must match.
	body.ID = "low"
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, "/v1/profiles/low", body).Code)
	body.ID = "default"
	requireAPIError(t, e.do(http.MethodPut, "/v1/profiles/low", body), http.StatusBadRequest, "id")
	require.Equal(t, "Default", e.b.State().Profile("default").Name)

	// PUT does not create.
	body.ID = ""
	requireAPIError(t, e.do(http.MethodPut, "/v1/profiles/nope", body), http.StatusNotFound, "id")
	require.Nil(t, e.b.State().Profile("nope"))

	// The default profile can be edited.
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, "/v1/profiles/default", body).Code)

	// PUT fills the defaults as create does; ts with low latency is refused
	// with the field to change.
	body.SegmentFormat, body.Latency = "ts", "low"
	eb := requireAPIError(t, e.do(http.MethodPut, "/v1/profiles/low", body), http.StatusBadRequest, "latency")
	require.Equal(t, "low latency needs segment_format fmp4", eb.Error)
	body.Latency = "standard"
	got = decodeBody[fsm.Profile](t, e.do(http.MethodPut, "/v1/profiles/low", body))
	require.Equal(t, fsm.SegmentTS, got.SegmentFormat)
	require.Equal(t, fsm.LatencyStandard, got.Latency)
	require.Equal(t, 334, got.PartMs)
}

func TestDeleteProfile(t *testing.T) {
	e := newEnv(t)
	e.createProfile("low")
	e.createProfile("used")
	in := e.createInput(map[string]any{"name": "a", "profile_id": "used"})

	rec := e.do(http.MethodDelete, "/v1/profiles/low", nil)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Empty(t, rec.Body.Bytes())
	requireAPIError(t, e.do(http.MethodGet, "/v1/profiles/low", nil), http.StatusNotFound, "id")
	requireAPIError(t, e.do(http.MethodDelete, "/v1/profiles/low", nil), http.StatusNotFound, "id")

	eb := requireAPIError(t, e.do(http.MethodDelete, "/v1/profiles/default", nil), http.StatusConflict, "id")
	require.Contains(t, eb.Error, "default")
	require.NotNil(t, e.b.State().Profile("default"))

	eb = requireAPIError(t, e.do(http.MethodDelete, "/v1/profiles/used", nil), http.StatusConflict, "id")
	require.Contains(t, eb.Error, in.ID, "the conflict names the input using it")
	require.NotNil(t, e.b.State().Profile("used"))

	// Once the input moves to another profile, the profile can go.
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, "/v1/inputs/"+in.ID, `{"profile_id":""}`).Code)
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "/v1/profiles/used", nil).Code)
}
