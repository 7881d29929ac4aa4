// d2v-text as a user meets it: each bad input gives a readable message and exit code 1; the
// documented behaviours (truncation warning, UTF-8 replacement on request) hold.
#include "cli_util.h"
#include "d2v/version.h"
#include "d2v/model_file.h"
#include "gguf_rewrite.h"

namespace {

std::string model(const std::string& variant) { return fixtures_dir() + "/text/" + variant + "/model.gguf"; }
CliResult run_text(const std::string& args) { return run_program(D2V_TEXT_CLI, args); }
// Hostile inputs run with an address-space and a time limit (tests/cli_util.h).
CliResult run_text_bounded(const std::string& args) { return run_program_bounded(D2V_TEXT_CLI, args, 2048, 60); }

std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// A copy of a fixture model with tokenizer metadata replaced (std::nullopt removes a key).
std::string rewritten_model(const std::string& variant, const gguf_rewrite::StringEdits& edits, const std::string& name) {
    const std::string path = temp_path(name);
    write_file(path, gguf_rewrite::with_strings(file_bytes(model(variant)), edits));
    return path;
}

// The fixture vocabulary with one token's id replaced by `id` (written as JSON text).
std::string vocab_with_id(const std::string& id) {
    std::string vocab = file_bytes(fixtures_dir() + "/text/tokenizer/vocab.json");
    const std::string entry = "\"<mask>\": 4";
    const size_t at = vocab.find(entry);
    EXPECT_NE(at, std::string::npos);
    return vocab.replace(at, entry.size(), "\"<mask>\": " + id);
}

TEST(TextCli, VersionExitsZero) {
    const CliResult r = run_text("--version");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, std::string("d2v-text ") + D2V_VERSION_STRING + "\n");
}

TEST(TextCli, HelpExitsZero) {
    const CliResult r = run_text("--help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("usage: d2v-text"), std::string::npos);
}

TEST(TextCli, FillMaskPrintsPredictions) {
    const CliResult r = run_text("-m " + model("masked_lm") + " --json -p \"The history of <mask> is long.\"");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"predictions\""), std::string::npos) << r.output;
}

TEST(TextCli, EmptyText) { expect_error(run_text("-m " + model("masked_lm") + " -p \"  \""), "input text is empty"); }

TEST(TextCli, InvalidUtf8IsRefusedByDefault) {
    write_file(temp_path("bad_utf8.txt"), std::string("caf\xc3 <mask> \xff\xfe"));
    expect_error(run_text("-m " + model("masked_lm") + " -f " + temp_path("bad_utf8.txt")), "is not valid UTF-8");
}

TEST(TextCli, InvalidUtf8IsReplacedOnRequest) {
    write_file(temp_path("bad_utf8.txt"), std::string("caf\xc3 <mask> \xff\xfe"));
    const CliResult r = run_text("-m " + model("masked_lm") + " --replace-invalid-utf8 -f " + temp_path("bad_utf8.txt"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("invalid bytes replaced with U+FFFD"), std::string::npos) << r.output;
}

TEST(TextCli, TooLongTextIsTruncatedWithAWarning) {
    std::string text;
    for (int i = 0; i < 400; ++i) text += "word ";
    write_file(temp_path("long.txt"), text + "<mask>");
    const CliResult r = run_text("-m " + model("seqcls_single") + " -f " + temp_path("long.txt"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("warning: input truncated"), std::string::npos) << r.output;
}

TEST(TextCli, TooLongTextIsAnErrorWithNoTruncate) {
    std::string text;
    for (int i = 0; i < 400; ++i) text += "word ";
    write_file(temp_path("long.txt"), text);
    expect_error(run_text("-m " + model("seqcls_single") + " --no-truncate -f " + temp_path("long.txt")), "at most");
}

TEST(TextCli, FillMaskWithoutMask) {
    expect_error(run_text("-m " + model("masked_lm") + " -p \"no mask here\""), "needs at least one <mask> token");
}

TEST(TextCli, QuestionAnsweringWithoutQuestion) {
    expect_error(run_text("-m " + model("question_answering") + " --context \"Paris is in France.\""), "needs a non-empty --question");
}

TEST(TextCli, QuestionAnsweringGivesASpanOfTheContext) {
    const std::string context = "The Normans gave their name to Normandy, a region in France.";
    const CliResult r = run_text("-m " + model("question_answering") + " --json --question \"What region?\" --context \"" + context + "\"");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto doc = d2v::Json::parse(r.output);
    const std::string answer = doc.at("answer");
    EXPECT_NE(context.find(answer), std::string::npos) << answer;
    EXPECT_EQ(context.substr(doc.at("start").get<size_t>(), answer.size()), answer);
}

TEST(TextCli, AudioModelIsRefused) {
    expect_error(run_text("-m " + fixtures_dir() + "/audio/ctc/model.gguf -p hello"), "holds a 'data2vec-audio' model");
}

TEST(TextCli, GenerateProducesTokens) {
    const CliResult r = run_text("-m " + model("causal_lm") + " --json -n 5 -p \"The\"");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(d2v::Json::parse(r.output).at("generated_ids").size(), 5u) << r.output;
}

TEST(TextCli, SamplingIsReproducibleWithASeed) {
    const std::string args = "-m " + model("causal_lm") + " --json -n 8 --sample --top-k 20 --top-p 0.9 --seed 7 -p \"The\"";
    const CliResult a = run_text(args), b = run_text(args);
    ASSERT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(a.output, b.output);
}


TEST(TextCli, DumpWritesInputsAndOutputs) {
    const std::string dir = temp_path("text_dump");
    const CliResult r = run_text("-m " + model("model_absolute") + " --output-hidden-states --output-attentions --dump " + dir + " -p \"Hello world\"");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* f : {"input_ids", "attention_mask", "token_type_ids", "last_hidden_state", "pooler_output", "hidden_states.0", "attentions.1"})
        EXPECT_TRUE(fs::exists(dir + "/" + f + ".npy")) << f;
}

TEST(TextCli, CheckpointWithoutPoolerOmitsPoolerOutputWithAWarning) {
    const CliResult r = run_text("-m " + model("model_no_pooler") + " --json -p \"Hello world\"");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("warning: checkpoint has no pooler weights; pooler_output is omitted"), std::string::npos) << r.output;
}

TEST(TextCli, MultipleChoiceWithoutPoolerWeightsRefusesToLoad) {
    // The same file with its pooler tensors renamed (same length, so the file stays valid).
    std::ifstream f(model("multiple_choice"), std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(f), {});
    for (size_t at; (at = bytes.find("data2vec_text.pooler.")) != std::string::npos;) bytes.replace(at, 21, "data2vec_text.poolXr.");
    write_file(temp_path("mc_no_pooler.gguf"), bytes);
    expect_error(run_text("-m " + temp_path("mc_no_pooler.gguf") + " -p ctx --choice a --choice b"),
                 "Data2VecTextForMultipleChoice needs pooler weights");
}

// ---- tokenizer from what the checkpoint has (issue #9) and hostile tokenizer metadata (#10) ----

// Transformers 5 saves tokenizer.json only; convert.py then packs d2v.tokenizer_json alone. The
// output must be the same as with vocab.json + merges.txt.
TEST(TextCli, TokenizerFromTokenizerJsonAlone) {
    const std::string args = " --json -p \"The history of <mask> is long, isn't it?\"";
    const std::string path =
        rewritten_model("masked_lm", {{"d2v.vocab_json", std::nullopt}, {"d2v.merges_txt", std::nullopt}}, "tj_alone.gguf");
    const CliResult full = run_text("-m " + model("masked_lm") + args), alone = run_text("-m " + path + args);
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    ASSERT_EQ(full.exit_code, 0) << full.output;
    const d2v::Json a = d2v::Json::parse(alone.output).at("masks"), b = d2v::Json::parse(full.output).at("masks");
    ASSERT_EQ(a.size(), b.size());
    for (size_t m = 0; m < a.size(); ++m) {  // same tokens; scores to float rounding (the tensors moved in the file)
        EXPECT_EQ(a[m]["position"], b[m]["position"]);
        for (size_t k = 0; k < a[m]["predictions"].size(); ++k) {
            EXPECT_EQ(a[m]["predictions"][k]["token"], b[m]["predictions"][k]["token"]);
            EXPECT_NEAR(a[m]["predictions"][k]["score"].get<double>(), b[m]["predictions"][k]["score"].get<double>(), 1e-5);
        }
    }
}

TEST(TextCli, NoTokenizerAtAllIsAnError) {
    const std::string path = rewritten_model(
        "masked_lm", {{"d2v.vocab_json", std::nullopt}, {"d2v.merges_txt", std::nullopt}, {"d2v.tokenizer_json", std::nullopt}},
        "no_tokenizer.gguf");
    expect_bounded_error(run_text_bounded("-m " + path + " -p \"a <mask>\""), "model file has no tokenizer", 512);
}

// Was: 6.3 GB resident and exit 0 (id tables sized by the largest id).
TEST(TextCli, VocabularyIdFarBeyondTheVocabularyIsRefusedByName) {
    const std::string path = rewritten_model("masked_lm", {{"d2v.vocab_json", vocab_with_id("100000000")}}, "vocab_1e8.gguf");
    expect_bounded_error(run_text_bounded("-m " + path + " -p \"a <mask>\""), "'<mask>' has id 100000000", 512);
}

// Was: "out of memory" without naming the id.
TEST(TextCli, VocabularyIdAbove32BitsIsRefusedByName) {
    const std::string path = rewritten_model("masked_lm", {{"d2v.vocab_json", vocab_with_id("4294967301")}}, "vocab_2e32.gguf");
    expect_bounded_error(run_text_bounded("-m " + path + " -p \"a <mask>\""), "'<mask>' has id 4294967301", 512);
}

// Was: a bare nlohmann parse error naming neither the file nor the key.
TEST(TextCli, MalformedTokenizerJsonNamesFileAndKey) {
    const std::string path = rewritten_model("masked_lm", {{"d2v.tokenizer_json", "{\"model\": [1, 2"}}, "bad_tj.gguf");
    const CliResult r = run_text_bounded("-m " + path + " -p \"a <mask>\"");
    expect_bounded_error(r, "metadata 'd2v.tokenizer_json' is not valid JSON", 512);
    EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
}

TEST(TextCli, TokenizerJsonOfAnotherModelTypeIsRefused) {
    d2v::Json tj = d2v::Json::parse(file_bytes(fixtures_dir() + "/text/tokenizer/tokenizer.json"));
    tj["model"]["type"] = "WordPiece";
    const std::string path = rewritten_model(
        "masked_lm", {{"d2v.vocab_json", std::nullopt}, {"d2v.merges_txt", std::nullopt}, {"d2v.tokenizer_json", tj.dump()}},
        "wordpiece.gguf");
    expect_bounded_error(run_text_bounded("-m " + path + " -p \"a <mask>\""), "model.type 'WordPiece' is not supported", 512);
}

// Was: "error: stof" and exit 1. Every numeric option gives a usage error naming it, exit 2.
TEST(TextCli, BadNumericOptionsAreUsageErrors) {
    const std::string m = "-m " + model("causal_lm") + " -p The ";
    for (const std::string bad : {"--top-p abc", "--top-p 1.5", "--top-p nan", "--temp xyz", "--temp 0", "--temp -1",
                                   "--top-k -3", "-n 1e3", "-n ''", "--seed -1", "--seed 12x", "-t 0", "-k abc",
                                   "--max-answer-length 0"}) {
        const CliResult r = run_text(m + bad);
        const std::string option = bad.substr(0, bad.find(' '));
        EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
        EXPECT_NE(r.output.find("option " + option), std::string::npos) << bad << ": " << r.output;
    }
    EXPECT_EQ(run_text(m + "--sample --top-p 0.5 --temp 0.7 --seed 18446744073709551615 -n 2").exit_code, 0);
}

}  // namespace
