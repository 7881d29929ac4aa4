// Writes the committed seed corpora (tests/fuzz/corpus/<target>/): tiny model files for every head
// of every modality, built from our own tensor tables so they are valid by construction (a few KB
// each), their configs, short audio files in the formats libsndfile reads, and tokenizer inputs.
// Run from the fuzz build: d2v-fuzz-make-seeds tests/fuzz/corpus
#include <sndfile.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "../gguf_writer.h"
#include "d2v/audio/tensor_names.h"
#include "d2v/text/tensor_names.h"
#include "d2v/vision/tensor_names.h"

namespace fs = std::filesystem;
using d2v::Json;

namespace {

void write(const fs::path& path, const std::string& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// A model file holding every tensor `table` lists (small random values) and the given documents.
std::string model(const std::string& arch, const std::string& cls, const Json& config, const d2v::TensorTable& table,
                  const std::vector<std::pair<std::string, std::string>>& documents = {}) {
    std::vector<std::pair<std::string, d2v::GgufValue>> kvs = {
        {"general.architecture", arch}, {"d2v.format_version", uint64_t(1)}, {"d2v.model_class", cls},
        {"d2v.config_json", config.dump()}};
    for (const auto& [key, text] : documents) kvs.emplace_back(key, text);
    const d2v::TensorTable all = table.expanded(1 << 16);
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    std::vector<std::vector<float>> values;
    std::vector<gguf_test::TensorBytes> tensors;
    for (const auto& spec : all.specs()) {
        values.emplace_back(gguf_test::elements(spec.shape));
        for (auto& v : values.back()) v = u(gen);
        if (spec.name.find("running_var") != std::string::npos)
            for (auto& v : values.back()) v = 1.0f + v;  // batch-norm variances are positive
    }
    for (size_t i = 0; i < all.specs().size(); ++i) tensors.push_back({all.specs()[i].name, all.specs()[i].shape, values[i].data()});
    return gguf_test::gguf_bytes(kvs, tensors);
}

void audio_seeds(const fs::path& out) {
    const Json base = {{"hidden_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"intermediate_size", 8},
                       {"conv_dim", {4, 4}}, {"conv_stride", {5, 2}}, {"conv_kernel", {10, 3}}, {"num_conv_pos_embeddings", 1},
                       {"conv_pos_kernel_size", 3}, {"num_conv_pos_embedding_groups", 2}, {"vocab_size", 6}, {"pad_token_id", 0}};
    const std::string vocab = R"({"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5})";
    const std::string preprocessor = R"({"sampling_rate": 16000, "do_normalize": true, "return_attention_mask": true})";
    struct Variant {
        const char* file;
        const char* cls;
        Json overrides;
    };
    const std::vector<Variant> variants = {
        {"audio_base", "Data2VecAudioModel", Json::object()},
        {"audio_ctc", "Data2VecAudioForCTC", {{"conv_bias", true}}},
        {"audio_ctc_adapter", "Data2VecAudioForCTC",
         {{"add_adapter", true}, {"output_hidden_size", 4}, {"num_adapter_layers", 1}, {"adapter_stride", 2}}},
        {"audio_seqcls", "Data2VecAudioForSequenceClassification",
         {{"classifier_proj_size", 4}, {"use_weighted_layer_sum", true}, {"id2label", {{"0", "no"}, {"1", "yes"}}}}},
        {"audio_frame", "Data2VecAudioForAudioFrameClassification", {{"num_labels", 3}, {"hidden_act", "relu"}}},
        {"audio_xvector", "Data2VecAudioForXVector",
         {{"tdnn_dim", {4, 4}}, {"tdnn_kernel", {3, 1}}, {"tdnn_dilation", {1, 2}}, {"xvector_output_dim", 4}, {"num_labels", 2}}},
    };
    for (const auto& v : variants) {
        Json config = base;
        config.update(v.overrides);
        const auto c = d2v::audio::parse_audio_config(config);
        write(out / "config_json" / (std::string(v.file) + ".json"), config.dump());
        write(out / "model_file" / (std::string(v.file) + ".gguf"),
              model("data2vec-audio", v.cls, config, d2v::audio::audio_tensor_table(c, d2v::audio::parse_audio_head(v.cls)),
                    {{"d2v.vocab_json", vocab}, {"d2v.preprocessor_json", preprocessor}}));
    }
    write(out / "config_json" / "audio_preprocessor.json", preprocessor);
}

void text_seeds(const fs::path& out) {
    const Json base = {{"vocab_size", 12}, {"hidden_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                       {"intermediate_size", 8}, {"max_position_embeddings", 10}, {"type_vocab_size", 1}, {"pad_token_id", 1}};
    const std::string vocab =
        R"({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "a": 5, "b": 6, "\u0120": 7, "ab": 8, "\u0120a": 9, "c": 10, "\u0120ab": 11})";
    const std::string merges = "#version: 0.2\na b\n\xc4\xa0 a\n\xc4\xa0" "a b\n";
    struct Variant {
        const char* file;
        const char* cls;
        Json overrides;
        bool pooler;
    };
    const std::vector<Variant> variants = {
        {"text_base", "Data2VecTextModel", Json::object(), true},
        {"text_mlm", "Data2VecTextForMaskedLM", Json::object(), false},
        {"text_clm", "Data2VecTextForCausalLM", {{"is_decoder", true}, {"position_embedding_type", "relative_key"}}, false},
        {"text_seqcls", "Data2VecTextForSequenceClassification", {{"position_embedding_type", "relative_key_query"}}, false},
        {"text_choice", "Data2VecTextForMultipleChoice", Json::object(), true},
        {"text_token", "Data2VecTextForTokenClassification", {{"id2label", {{"0", "O"}, {"1", "B"}, {"2", "I"}}}}, false},
        {"text_qa", "Data2VecTextForQuestionAnswering", {{"hidden_act", "gelu_new"}}, false},
    };
    for (const auto& v : variants) {
        Json config = base;
        config.update(v.overrides);
        const auto c = d2v::text::parse_text_config(config);
        write(out / "config_json" / (std::string(v.file) + ".json"), config.dump());
        write(out / "model_file" / (std::string(v.file) + ".gguf"),
              model("data2vec-text", v.cls, config, d2v::text::text_tensor_table(c, d2v::text::parse_text_head(v.cls), v.pooler),
                    {{"d2v.vocab_json", vocab}, {"d2v.merges_txt", merges}}));
    }
    // Tokenizer seeds: even first byte = text for the fixture tokenizer; odd = a whole tokenizer + text.
    const std::string sep = "\n#--#\n";
    write(out / "tokenizer" / "fixture_text", std::string(1, '\0') + "Hello world, it's <mask>! caf\xc3\xa9 \xf0\x9f\x98\x80  12 ab");
    write(out / "tokenizer" / "fixture_invalid_utf8", std::string(1, '\2') + "a\xff\xc3 b\xed\xa0\x80 <s>x</s>");
    write(out / "tokenizer" / "own_vocab", "\1" + vocab + sep + merges + sep + sep + sep + "ab a b c ab<mask>");
    const std::string tokenizer_json = R"({"version": "1.0", "added_tokens": [
{"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
{"id": 4, "content": "<mask>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true}],
"normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
"post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": true, "add_prefix_space": false},
"decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "vocab": )" + vocab +
                                     R"(, "merges": [["a", "b"], ["\u0120", "a"], ["\u0120a", "b"]]}})";
    write(out / "tokenizer" / "own_tokenizer_json", "\1" + sep + sep + tokenizer_json + sep + sep + " ab <mask> c");
}

void vision_seeds(const fs::path& out) {
    const Json base = {{"hidden_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"intermediate_size", 8},
                       {"image_size", 8}, {"patch_size", 4}, {"num_labels", 2}};
    const std::string preprocessor = R"({"size": {"height": 8, "width": 8}, "do_center_crop": false, "resample": 2})";
    struct Variant {
        const char* file;
        const char* cls;
        Json overrides;
    };
    const std::vector<Variant> variants = {
        {"vision_base", "Data2VecVisionModel", {{"use_mean_pooling", false}, {"use_mask_token", true}}},
        {"vision_cls", "Data2VecVisionForImageClassification", {{"use_relative_position_bias", true}}},
        {"vision_seg", "Data2VecVisionForSemanticSegmentation",
         {{"num_hidden_layers", 3}, {"out_indices", {1, 2, 3, 4}}, {"pool_scales", {1, 2}}, {"auxiliary_channels", 4},
          {"use_shared_relative_position_bias", true}, {"use_absolute_position_embeddings", true}, {"auxiliary_concat_input", true}}},
    };
    for (const auto& v : variants) {
        Json config = base;
        config.update(v.overrides);
        const auto c = d2v::vision::parse_vision_config(config);
        const auto head = d2v::vision::parse_vision_head(v.cls);
        write(out / "config_json" / (std::string(v.file) + ".json"), config.dump());
        write(out / "model_file" / (std::string(v.file) + ".gguf"),
              model("data2vec-vision", v.cls, config, d2v::vision::vision_tensor_table(c, head, head != d2v::vision::VisionHead::Base),
                    {{"d2v.preprocessor_json", preprocessor}}));
    }
    write(out / "config_json" / "vision_preprocessor.json", preprocessor);
}

// 50 ms of a tone in a few of the formats libsndfile reads.
void audio_file_seeds(const fs::path& out) {
    struct Format {
        const char* file;
        int format, rate, channels;
    };
    const Format formats[] = {
        {"pcm16_16k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1},
        {"u8_8k_stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 8000, 2},
        {"float_44k.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 1},
        {"pcm24_48k.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 48000, 2},
        {"vorbis_22k.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 22050, 1},
        {"pcm16_16k.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 16000, 1},
    };
    fs::create_directories(out / "audio_decode");
    for (const auto& f : formats) {
        SF_INFO info{};
        info.samplerate = f.rate;
        info.channels = f.channels;
        info.format = f.format;
        const std::string path = (out / "audio_decode" / f.file).string();
        SNDFILE* sf = sf_open(path.c_str(), SFM_WRITE, &info);
        if (!sf) throw std::runtime_error(path + ": " + sf_strerror(nullptr));
        std::vector<float> frames(size_t(f.rate / 20 * f.channels));
        for (size_t i = 0; i < frames.size(); ++i) frames[i] = 0.5f * std::sin(0.05f * float(i));
        sf_writef_float(sf, frames.data(), f.rate / 20);
        sf_close(sf);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: d2v-fuzz-make-seeds CORPUS_DIR\n");
        return 2;
    }
    const fs::path out = argv[1];
    audio_seeds(out);
    text_seeds(out);
    vision_seeds(out);
    audio_file_seeds(out);
    return 0;
}
