// d2v-text as a user meets it: each bad input gives a readable message and exit code 1; the
// documented behaviours (truncation warning, UTF-8 replacement on request) hold.
#include "cli_util.h"
#include "d2v/model_file.h"

namespace {

std::string model(const std::string& variant) { return fixtures_dir() + "/text/" + variant + "/model.gguf"; }
CliResult run_text(const std::string& args) { return run_program(D2V_TEXT_CLI, args); }

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

}  // namespace
