// Audio decoding (libsndfile: WAV/FLAC/OGG/..., mix-down, libsoxr resampling) through the public
// block-by-block reader, capped at 30 s of output so one execution stays small.
#include "d2v/audio/audio_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fuzz::MemoryFile file(data, size);
    fuzz::expect_only_d2v_errors([&] { d2v::audio::read_audio(file.path(), 16000, 30.0); });
    return 0;
}
