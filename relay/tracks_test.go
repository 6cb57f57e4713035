package relay

import (
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"
)

func TestAudioOf(t *testing.T) {
	aac := func(typ, ext mpeg4audio.ObjectType) *description.Session {
		return &description.Session{Medias: []*description.Media{
			{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}},
			{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{PayloadTyp: 97, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
				Config: &mpeg4audio.AudioSpecificConfig{Type: typ, ExtensionType: ext, SampleRate: 44100, ChannelCount: 2}}}},
		}}
	}
	a, err := audioOf(aac(mpeg4audio.ObjectTypeAACLC, 0))
	require.NoError(t, err)
	require.Equal(t, Audio{Codec: "MPEG-4 Audio", AACLC: true, SampleRate: 44100, Channels: 2}, a)
	a, err = audioOf(aac(mpeg4audio.ObjectTypeAACLC, mpeg4audio.ObjectTypeSBR))
	require.NoError(t, err)
	require.False(t, a.AACLC, "HE-AAC")

	a, err = audioOf(&description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}},
	}})
	require.NoError(t, err)
	require.Equal(t, Audio{Codec: "Opus", SampleRate: 48000}, a)

	_, err = audioOf(&description.Session{})
	require.ErrorIs(t, err, ErrNoAudio)
}
