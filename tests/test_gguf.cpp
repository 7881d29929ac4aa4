// Model-file robustness: a damaged or foreign file is refused with a message that says what is
// wrong — never a crash or an out-of-bounds read (ASan/UBSan builds run these too).
#include <cstring>

#include "d2v/audio/pipeline.h"
#include "test_util.h"

namespace {

std::string ctc_model() { return fixtures_dir() + "/audio/ctc/model.gguf"; }

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string write_temp(const std::string& name, const std::string& bytes) {
    const std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return path;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const d2v::Error& e) {
        return e.what();
    }
    return "<no error>";
}

// Overwrites the data offset in the tensor-info record of `tensor` (name, n_dims, dims, type, offset).
std::string with_tensor_offset(std::string bytes, const std::string& tensor, uint64_t offset) {
    std::string key(8, '\0');
    const uint64_t len = tensor.size();
    std::memcpy(key.data(), &len, 8);
    key += tensor;
    const size_t at = bytes.find(key);
    EXPECT_NE(at, std::string::npos);
    size_t pos = at + key.size();
    uint32_t n_dims = 0;
    std::memcpy(&n_dims, bytes.data() + pos, 4);
    pos += 4 + 8 * size_t(n_dims) + 4;
    std::memcpy(bytes.data() + pos, &offset, 8);
    return bytes;
}

TEST(ModelFile, LoadsTheFixture) { EXPECT_NO_THROW(d2v::audio::AudioPipeline p(ctc_model())); }

TEST(ModelFile, MissingFile) {
    EXPECT_NE(error_of([] { d2v::ModelFile f("/nonexistent/model.gguf"); }).find("cannot open model file"), std::string::npos);
}

TEST(ModelFile, NotAGgufFile) {
    const auto path = write_temp("not_gguf.gguf", "this is a text file, not a model\n");
    EXPECT_NE(error_of([&] { d2v::ModelFile f(path); }).find("bad magic"), std::string::npos);
}

TEST(ModelFile, EveryTruncationIsRefused) {
    // Cut the file at many points, from inside the header to inside the last tensor.
    const std::string bytes = read_bytes(ctc_model());
    for (size_t cut : {size_t(3), size_t(24), size_t(100), size_t(1000), bytes.size() / 4, bytes.size() / 2, bytes.size() - 1}) {
        const auto path = write_temp("truncated.gguf", bytes.substr(0, cut));
        const std::string err = error_of([&] { d2v::audio::AudioPipeline p(path); });
        EXPECT_TRUE(err.find("truncated") != std::string::npos || err.find("outside the file") != std::string::npos ||
                    err.find("too short") != std::string::npos)
            << "cut at " << cut << ": " << err;
    }
}

TEST(ModelFile, CorruptedTensorOffsetIsRefusedByName) {
    const std::string tensor = "lm_head.weight";
    const auto path = write_temp("bad_offset.gguf", with_tensor_offset(read_bytes(ctc_model()), tensor, uint64_t(1) << 40));
    const std::string err = error_of([&] { d2v::audio::AudioPipeline p(path); });
    EXPECT_NE(err.find("'" + tensor + "'"), std::string::npos) << err;
    EXPECT_NE(err.find("outside the file"), std::string::npos) << err;
}

TEST(ModelFile, MisalignedTensorOffsetIsRefused) {
    const auto path = write_temp("misaligned.gguf", with_tensor_offset(read_bytes(ctc_model()), "lm_head.bias", 3));
    EXPECT_NE(error_of([&] { d2v::audio::AudioPipeline p(path); }).find("not aligned"), std::string::npos);
}

TEST(ModelFile, OtherArchitectureIsRefusedByName) {
    for (const char* other : {"data2vec-text", "data2vec-vision"}) {
        const std::string path = fixtures_dir() + "/other/" + other + ".gguf";
        const std::string err = error_of([&] { d2v::audio::AudioPipeline p(path, "d2v-audio"); });
        EXPECT_NE(err.find(std::string("holds a '") + other + "' model"), std::string::npos) << err;
    }
}

TEST(ModelFile, ConfigThatDisagreesWithWeightsNamesTheTensor) {
    // Same weights, config claims a different vocabulary size: the lm_head shape check must fire.
    const auto pipe = std::make_shared<const d2v::ModelFile>(ctc_model());
    auto config = d2v::audio::parse_audio_config(pipe->config());
    config.vocab_size += 1;
    const std::string err = error_of([&] { pipe->validate(d2v::audio::audio_tensor_table(config, d2v::audio::AudioHead::CTC)); });
    EXPECT_NE(err.find("'lm_head.weight'"), std::string::npos) << err;
}

}  // namespace
