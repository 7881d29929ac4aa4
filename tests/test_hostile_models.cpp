// Hostile model files (issue #10 findings 2 and 12): a config that claims more than the file holds,
// a value of the wrong kind, metadata arrays that would expand in memory. Each must be refused by
// the CLI with exit code 1 and a message naming the field, cheaply: run under a memory limit
// (RLIMIT_AS outside ASan), a wall-clock limit and a peak-RSS bound (run_program_bounded).
#include <map>

#include "cli_util.h"
#include "d2v/audio/tensor_names.h"
#include "d2v/text/tensor_names.h"
#include "d2v/vision/tensor_names.h"
#include "gguf_writer.h"

namespace {

struct Modality {
    const char* name;
    std::string cli, model, input;
};

// The three CLIs, each with a fixture model and an input it accepts.
const std::vector<Modality>& modalities() {
    static const std::vector<Modality> all = {
        {"audio", D2V_AUDIO_CLI, fixtures_dir() + "/audio/ctc/model.gguf", std::string(D2V_SOURCE_DIR) + "/samples/seven.wav"},
        {"text", D2V_TEXT_CLI, fixtures_dir() + "/text/masked_lm/model.gguf", "-p 'Hello <mask>.'"},
        {"vision", D2V_VISION_CLI, fixtures_dir() + "/vision/models/image_classification/model.gguf",
         fixtures_dir() + "/vision/images/palette_37x23.png"},
    };
    return all;
}

constexpr double kMaxSeconds = 30;

// Peak RSS of the CLI refusing a 4-byte file: the program's fixed cost (~10 MB in Release; ASan
// and UBSan alone take ~230 MB). Each test bounds what a hostile file adds on top of it.
long baseline_rss_mb(const std::string& cli) {
    static std::map<std::string, long> cache;
    if (auto it = cache.find(cli); it != cache.end()) return it->second;
    const std::string path = temp_path("not_a_model.gguf");
    write_file(path, "junk");
    return cache[cli] = run_program_bounded(cli, "-m " + path + " x", 4096, kMaxSeconds).peak_rss_kb / 1024;
}

// Refusing a hostile edit of a < 1 MB fixture needs a few tens of MB above the baseline; before the
// fixes these cases took 1-7 GB and up to 95 s.
constexpr long kMaxExtraRssMb = 200;
long rss_budget(const std::string& cli, long extra_mb = kMaxExtraRssMb) { return baseline_rss_mb(cli) + extra_mb; }

CliResult run_with_config(const Modality& m, const std::string& tag, const std::function<void(d2v::Json&)>& edit) {
    d2v::Json config = d2v::ModelFile(m.model).config();
    edit(config);
    const std::string path = temp_path(std::string("hostile_") + m.name + "_" + tag + ".gguf");
    write_file(path, gguf_test::with_config(m.model, config));
    return run_program_bounded(m.cli, "-m " + path + " " + m.input, 2048, kMaxSeconds);
}

class HostileConfig : public ::testing::TestWithParam<Modality> {};

TEST_P(HostileConfig, UnmodifiedCopyStillLoads) {
    // The rewriting itself must not be what the other tests see refused.
    const CliResult r = run_with_config(GetParam(), "copy", [](d2v::Json&) {});
    EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 4000);
}

TEST_P(HostileConfig, LayerCountBeyondTheFileIsRefusedCheaply) {
    // Finding 2: num_hidden_layers 2^20 in a 690 KB text model took 6.7 GB and 95 s.
    const CliResult r = run_with_config(GetParam(), "layers", [](d2v::Json& c) { c["num_hidden_layers"] = 1 << 20; });
    expect_bounded_error(r, "config field 'num_hidden_layers' = 1048576 needs", rss_budget(GetParam().cli));
    EXPECT_NE(r.output.find("tensors the file holds"), std::string::npos) << r.output;
}

TEST_P(HostileConfig, NonIntegerSizeIsRefusedNamingTheField) {
    // Finding 12: hidden_size 32.5 was silently truncated to 32.
    const CliResult r = run_with_config(GetParam(), "float", [](d2v::Json& c) { c["hidden_size"] = 32.5; });
    expect_bounded_error(r, "config field 'hidden_size' must be an integer, got 32.5", rss_budget(GetParam().cli));
}

TEST_P(HostileConfig, BooleanSizeIsRefusedNamingTheField) {
    const CliResult r = run_with_config(GetParam(), "bool", [](d2v::Json& c) { c["intermediate_size"] = true; });
    expect_bounded_error(r, "config field 'intermediate_size' must be an integer, got true", rss_budget(GetParam().cli));
}

TEST_P(HostileConfig, NegativeCountIsRefusedNamingTheField) {
    const CliResult r = run_with_config(GetParam(), "negative", [](d2v::Json& c) { c["num_hidden_layers"] = -3; });
    expect_bounded_error(r, "config field 'num_hidden_layers' = -3 is out of range", rss_budget(GetParam().cli));
}

TEST_P(HostileConfig, NonNumericEpsilonIsRefusedNamingTheField) {
    // JSON has no NaN; a config can still hold a string where a number belongs.
    const CliResult r = run_with_config(GetParam(), "eps", [](d2v::Json& c) { c["layer_norm_eps"] = "NaN"; });
    expect_bounded_error(r, "config field 'layer_norm_eps' must be a finite number, got \"NaN\"", rss_budget(GetParam().cli));
}

TEST_P(HostileConfig, UnknownActivationIsRefusedNamingTheField) {
    const CliResult r = run_with_config(GetParam(), "act", [](d2v::Json& c) { c["hidden_act"] = "prelu"; });
    expect_bounded_error(r, "config field 'hidden_act': activation 'prelu' has learned parameters", rss_budget(GetParam().cli));
}

TEST_P(HostileConfig, ErrorListsAtMostTwentyTensors) {
    // A config that disagrees with every tensor: the message names 20 and counts the rest, instead
    // of one line per tensor (2 million lines for num_conv_pos_embeddings = 2^20 before the fix).
    const CliResult r = run_with_config(GetParam(), "mismatch", [](d2v::Json& c) {
        c["hidden_size"] = 2 * c.value("hidden_size", 768);
        c["intermediate_size"] = 2 * c.value("intermediate_size", 3072);
    });
    expect_bounded_error(r, "weights do not match", rss_budget(GetParam().cli));
    EXPECT_NE(r.output.find("\n  ... and "), std::string::npos) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 25) << r.output;
}

INSTANTIATE_TEST_SUITE_P(EachModality, HostileConfig, ::testing::ValuesIn(modalities()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HostileConfig, PositionalConvCountBeyondTheFileIsRefusedCheaply) {
    // Finding 2: num_conv_pos_embeddings 2^20 took 1.2 GB and printed a 2-million-line error.
    const CliResult r =
        run_with_config(modalities()[0], "posconv", [](d2v::Json& c) { c["num_conv_pos_embeddings"] = 1 << 20; });
    expect_bounded_error(r, "config field 'num_conv_pos_embeddings' = 1048576 needs", rss_budget(D2V_AUDIO_CLI));
    EXPECT_LT(r.output.size(), 2000u) << r.output.substr(0, 4000);
}

TEST(HostileConfig, HugeConvListIsBoundedByTheFile) {
    // A 256k-entry conv_dim costs 0.5 MB of JSON; it must not become 1M table entries. (The three
    // parsed lists themselves take ~100 MB under ASan, hence the larger budget.)
    const CliResult r = run_with_config(modalities()[0], "convlist", [](d2v::Json& c) {
        c["conv_dim"] = std::vector<int>(1 << 18, 1);
        c["conv_stride"] = std::vector<int>(1 << 18, 1);
        c["conv_kernel"] = std::vector<int>(1 << 18, 1);
    });
    expect_bounded_error(r, "config field 'conv_dim' = 262144 needs", rss_budget(D2V_AUDIO_CLI, 300));
}

// ---- GGUF metadata that would expand in memory (finding 12).

std::string write_gguf(const std::string& name, const std::string& bytes) {
    const std::string path = temp_path(name);
    write_file(path, bytes);
    return path;
}

TEST(HostileGguf, HugeByteArrayIsNotExpanded) {
    // A 16 MB u8 array took 40x its size (one 40-byte variant per byte: +660 MB) before the fix.
    gguf_test::Bytes b;
    b.header(0, 1).str("junk").put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(16u << 20);
    b.data.append(16u << 20, '\x07');
    b.data.append(32, '\0');  // room for the (empty) tensor data section
    const std::string path = write_gguf("u8_array.gguf", b.data);
    for (const auto& m : modalities()) {
        SCOPED_TRACE(m.name);
        // 16 MB of the file is mapped (and may be read once); the array itself must not be materialised.
        expect_bounded_error(run_program_bounded(m.cli, "-m " + path + " " + m.input, 1024, kMaxSeconds),
                             "not written by weights_tools/convert.py", rss_budget(m.cli, 50));
    }
}

TEST(HostileGguf, ManyEmptyStringsAreNotExpanded) {
    // 4M empty strings: 32 MB in the file (read once to check each length: +32 MB), +190 MB as
    // std::string variants before the fix.
    gguf_test::Bytes b;
    b.header(0, 1).str("junk").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(4u << 20);
    b.data.append((size_t(32) << 20) + 32, '\0');
    const std::string path = write_gguf("str_array.gguf", b.data);
    expect_bounded_error(run_program_bounded(D2V_TEXT_CLI, "-m " + path + " -p hi", 1024, kMaxSeconds),
                         "not written by weights_tools/convert.py", rss_budget(D2V_TEXT_CLI, 80));
}

TEST(HostileGguf, ArrayLongerThanTheFileIsRefused) {
    gguf_test::Bytes b;
    b.header(0, 1).str("junk").put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(1000);  // 1000 f32 = 4000 bytes
    b.data.append(100, '\0');
    const std::string path = write_gguf("short_array.gguf", b.data);
    expect_bounded_error(run_program_bounded(D2V_AUDIO_CLI, "-m " + path + " x.wav", 1024, kMaxSeconds),
                         "exceeds the file", rss_budget(D2V_AUDIO_CLI));
}

TEST(HostileGguf, ClaimedCountsBeyondTheFileAreRefused) {
    gguf_test::Bytes tensors, keys;
    tensors.header(1u << 20, 0).data.append(200, '\0');
    keys.header(0, 1u << 20).data.append(200, '\0');
    expect_bounded_error(run_program_bounded(D2V_VISION_CLI, "-m " + write_gguf("many_tensors.gguf", tensors.data) + " x.png"),
                         "tensor count 1048576 is implausible", rss_budget(D2V_VISION_CLI));
    expect_bounded_error(run_program_bounded(D2V_VISION_CLI, "-m " + write_gguf("many_keys.gguf", keys.data) + " x.png"),
                         "metadata count 1048576 is implausible", rss_budget(D2V_VISION_CLI));
}

TEST(HostileGguf, OverlongKeyIsRefused) {
    gguf_test::Bytes b;
    b.header(0, 1).kv_string(std::string(100000, 'k'), "v");
    expect_bounded_error(run_program_bounded(D2V_TEXT_CLI, "-m " + write_gguf("long_key.gguf", b.data) + " -p hi"),
                         "metadata key is 100000 bytes long", rss_budget(D2V_TEXT_CLI));
}

TEST(HostileGguf, OverlongArchitectureIsNotEchoed) {
    // The architecture and class names appear in messages; a 1 MB one must not.
    gguf_test::Bytes b;
    b.header(0, 3).kv_string("general.architecture", std::string(1 << 20, 'a')).kv_u32("d2v.format_version", 1).kv_string("d2v.config_json", "{}");
    b.data.append(32, '\0');
    const CliResult r = run_program_bounded(D2V_VISION_CLI, "-m " + write_gguf("long_arch.gguf", b.data) + " x.png");
    expect_bounded_error(r, "implausibly long", rss_budget(D2V_VISION_CLI));
    EXPECT_LT(r.output.size(), 2000u);
}

// ---- the typed config readers themselves.

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const d2v::Error& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(ConfigValue, IntegersAreStrict) {
    const auto j = d2v::Json::parse(R"({"a": 32.5, "b": true, "c": "7", "d": 32.0, "e": 18446744073709551615, "f": 7, "g": null})");
    EXPECT_EQ(error_of([&] { d2v::config_value<int64_t>(j, "a", 0); }), "config field 'a' must be an integer, got 32.5");
    EXPECT_EQ(error_of([&] { d2v::config_value<int64_t>(j, "b", 0); }), "config field 'b' must be an integer, got true");
    EXPECT_EQ(error_of([&] { d2v::config_value<int64_t>(j, "c", 0); }), "config field 'c' must be an integer, got \"7\"");
    // Python's json writes 32.0 for a float; Transformers would pass a float where torch needs an int.
    EXPECT_EQ(error_of([&] { d2v::config_value<int64_t>(j, "d", 0); }), "config field 'd' must be an integer, got 32.0");
    EXPECT_EQ(error_of([&] { d2v::config_value<int64_t>(j, "e", 0); }), "config field 'e' is out of range: 18446744073709551615");
    EXPECT_EQ(d2v::config_value<int64_t>(j, "f", 0), 7);
    EXPECT_EQ(d2v::config_value<int64_t>(j, "g", 5), 5);        // null takes the default
    EXPECT_EQ(d2v::config_value<int64_t>(j, "missing", 9), 9);
}

TEST(ConfigValue, OtherKindsAreStrict) {
    // (JSON has no NaN or infinity: nlohmann refuses 1e999 and NaN when parsing.)
    const auto j = d2v::Json::parse(R"({"n": true, "b": 1, "s": 3, "v": [1, 2.5], "w": 4})");
    EXPECT_EQ(error_of([&] { d2v::config_value<double>(j, "n", 0.0); }), "config field 'n' must be a finite number, got true");
    EXPECT_EQ(error_of([&] { d2v::config_value<bool>(j, "b", false); }), "config field 'b' must be true or false, got 1");
    EXPECT_EQ(error_of([&] { d2v::config_value<std::string>(j, "s", ""); }), "config field 's' must be a string, got 3");
    EXPECT_EQ(error_of([&] { d2v::config_value<std::vector<int64_t>>(j, "v", {}); }), "config field 'v[1]' must be an integer, got 2.5");
    EXPECT_EQ(error_of([&] { d2v::config_value<std::vector<int64_t>>(j, "w", {}); }), "config field 'w' must be a list of integers, got 4");
}

TEST(ConfigValue, EachModalityNamesTheBadField) {
    const auto bad = d2v::Json::parse(R"({"num_attention_heads": 2.5})");
    const std::string want = "config field 'num_attention_heads' must be an integer, got 2.5";
    EXPECT_EQ(error_of([&] { d2v::audio::parse_audio_config(bad); }), want);
    EXPECT_EQ(error_of([&] { d2v::text::parse_text_config(bad); }), want);
    EXPECT_EQ(error_of([&] { d2v::vision::parse_vision_config(bad); }), want);
    EXPECT_EQ(error_of([&] { d2v::vision::parse_vision_config(d2v::Json::parse(R"({"image_size": [224, 1.5]})")); }),
              "config field 'image_size[1]' must be an integer, got 1.5");
    EXPECT_EQ(error_of([&] { d2v::audio::parse_audio_config(d2v::Json::parse(R"({"conv_stride": [5, 2, 2, 2, 2, 2, 0]})")); }),
              "config field 'conv_stride[6]' = 0 is out of range [1, 65536]");
}

TEST(ConfigValue, ConvStackSpanningTooManySamplesIsRefused) {
    // (need - 1) * stride + kernel per layer would overflow int64 in receptive_field().
    d2v::Json j;
    j["conv_dim"] = std::vector<int>(8, 4);
    j["conv_stride"] = std::vector<int>(8, 65536);
    j["conv_kernel"] = std::vector<int>(8, 65536);
    EXPECT_NE(error_of([&] { d2v::audio::parse_audio_config(j); }).find("more than 2^40 samples"), std::string::npos);
}

TEST(TensorTable, RepeatedBlocksAreBoundedByTheFile) {
    d2v::TensorTable t;
    int built = 0;
    t.add_repeated("num_things", int64_t(1) << 40, [&](d2v::TensorTable& b, int64_t i) {
        ++built;
        b.add("thing." + std::to_string(i) + ".a", {1});
        b.add("thing." + std::to_string(i) + ".b", {1});
    });
    EXPECT_EQ(error_of([&] { t.expanded(100); }),
              "config field 'num_things' = 1099511627776 needs 2 tensors per entry, more than the 100 tensors the file holds "
              "(does the config match the weights?)");
    EXPECT_EQ(built, 1);  // only the block that measured the size
    d2v::TensorTable small;
    small.add_repeated("n", 3, [](d2v::TensorTable& b, int64_t i) { b.add("x" + std::to_string(i), {1}); });
    EXPECT_EQ(small.expanded(3).specs().size(), 3u);
}

}  // namespace
