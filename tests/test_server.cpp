// d2v-server end to end: the test starts the real binary on 127.0.0.1 (a free port it picks itself,
// --port 0), talks HTTP to it with httplib's client, and kills it at the end whatever happens.
// Every route is checked against the CLI's --json output for the same model and input (the same
// library code, so equal up to float printing: 1e-5, where JSON's shortest float round trip and
// the CLI's single-file batch leave ~1e-7), every error status is provoked, and the concurrency
// claims (16 x 20 requests: only 200 or 429; SIGTERM loses nothing accepted) are exercised.
#include "server_util.h"  // first: d2v/Eigen before httplib.h
#include "d2v/d2v.hpp"
#include "d2v/version.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

namespace {

// `seconds` of a 440 Hz tone, 16 kHz 16-bit mono WAV: an input that keeps a worker busy.
void write_tone_wav(const std::string& path, int seconds) {
    const int rate = 16000, n = rate * seconds;
    std::string pcm;
    pcm.reserve(size_t(n) * 2);
    for (int i = 0; i < n; ++i) {
        const int16_t v = int16_t(8000 * std::sin(2 * M_PI * 440 * i / rate));
        pcm.append(reinterpret_cast<const char*>(&v), 2);
    }
    auto u32 = [](uint32_t x) { return std::string(reinterpret_cast<const char*>(&x), 4); };
    auto u16 = [](uint16_t x) { return std::string(reinterpret_cast<const char*>(&x), 2); };
    write_file(path, "RIFF" + u32(uint32_t(36 + pcm.size())) + "WAVEfmt " + u32(16) + u16(1) + u16(1) + u32(rate) + u32(rate * 2) +
                         u16(2) + u16(16) + "data" + u32(uint32_t(pcm.size())) + pcm);
}

// Joins the threads when the test leaves its scope, failed assertions included (a joinable
// std::thread at destruction would abort the whole test binary).
struct JoinAll {
    std::vector<std::thread>& threads;
    ~JoinAll() {
        for (auto& t : threads)
            if (t.joinable()) t.join();
    }
};

// /metrics once it contains every one of `needles` (requests are counted just after their response
// is written, so a client can be a moment ahead of the counters), or the last body after ~2 s.
std::string metrics_with(httplib::Client& c, const std::vector<std::string>& needles, const httplib::Headers& headers = {}) {
    std::string body;
    for (int tries = 0; tries < 100; ++tries) {
        if (tries) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        auto m = c.Get("/metrics", headers);
        body = m ? m->body : "";
        if (std::all_of(needles.begin(), needles.end(), [&](const std::string& n) { return body.find(n) != std::string::npos; })) break;
    }
    return body;
}

// ---- command line

TEST(ServerCli, HelpVersionUsageAndBadModel) {
    EXPECT_EQ(run_program(kServer, "--help").exit_code, 0);
    const CliResult v = run_program(kServer, "--version");
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_NE(v.output.find("d2v-server "), std::string::npos);
    EXPECT_EQ(run_program(kServer, "").exit_code, 2);
    EXPECT_EQ(run_program(kServer, "-m x.gguf --port 70000").exit_code, 2);
    EXPECT_EQ(run_program(kServer, "-m x.gguf --bogus").exit_code, 2);
    EXPECT_EQ(run_program(kServer, "-m x.gguf --api-key a --api-key-file b").exit_code, 2);
    EXPECT_EQ(run_program(kServer, "-m x.gguf --chunk -1").exit_code, 2);
    EXPECT_EQ(run_program(kServer, "-m x.gguf --workers 0").exit_code, 2);
    EXPECT_EQ(run_program(kServer, "-m x.gguf --timeout 0").exit_code, 2);
    // A bad model file: exit 1 with the reader's message, after the port was opened and closed again.
    const std::string bad = temp_path("server_bad.gguf");
    write_file(bad, "not a gguf file at all");
    expect_bounded_error(run_program_bounded(kServer, "--port 0 -m " + bad, 2048, 60), "d2v-server: error:");
    expect_bounded_error(run_program_bounded(kServer, "--port 0 -m " + temp_path("server_missing.gguf"), 2048, 60), "d2v-server: error:");
}

// ---- audio

TEST(ServerAudio, TranscriptionsEqualTheCli) {
    const std::string model = fixture("audio/ctc/model.gguf");
    ServerProcess s("--quiet -m " + model);
    ASSERT_TRUE(s.ready) << s.log();
    auto c = s.client();
    const Json cli = cli_json(D2V_AUDIO_CLI, "--json --timestamps -m " + model + " " + jfk())["results"][0];

    const Json j = json_of(c.Post("/v1/audio/transcriptions", upload_form(jfk(), "json")));
    EXPECT_EQ(j["text"], cli["transcript"]);
    auto text = c.Post("/v1/audio/transcriptions", upload_form(jfk(), "text"));
    ASSERT_TRUE(text);
    EXPECT_EQ(text->body, cli["transcript"].get<std::string>() + "\n");
    EXPECT_EQ(text->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
    const Json v = json_of(c.Post("/v1/audio/transcriptions", upload_form(jfk(), "verbose_json")));
    EXPECT_EQ(v["text"], cli["transcript"]);
    ASSERT_EQ(v["words"].size(), cli["words"].size());
    for (size_t i = 0; i < v["words"].size(); ++i) {
        EXPECT_EQ(v["words"][i]["word"], cli["words"][i]["word"]);
        EXPECT_NEAR(v["words"][i]["start"].get<double>(), cli["words"][i]["start"].get<double>(), 1e-9);
        EXPECT_NEAR(v["words"][i]["end"].get<double>(), cli["words"][i]["end"].get<double>(), 1e-9);
    }
    EXPECT_NEAR(v["duration"].get<double>(), 11.0, 0.1);  // jfk.wav is 11.0 s

    // --chunk 0: one pass over the whole file, as d2v-audio --chunk 0.
    {
        ServerProcess whole("--quiet --chunk 0 -m " + model);
        ASSERT_TRUE(whole.ready) << whole.log();
        const Json one_pass = cli_json(D2V_AUDIO_CLI, "--json --chunk 0 -m " + model + " " + jfk())["results"][0];
        EXPECT_EQ(json_of(whole.client().Post("/v1/audio/transcriptions", upload_form(jfk(), "json")))["text"], one_pass["transcript"]);
    }

    expect_error(c.Post("/v1/audio/transcriptions", upload_form(jfk(), "srt")), 400, "bad_request");
    expect_error(c.Post("/v1/audio/transcriptions", slurp(jfk()), "audio/wav"), 415, "unsupported_media_type");
    expect_error(c.Post("/v1/audio/transcriptions", httplib::MultipartFormDataItems{{"file", "RIFF garbage", "x.wav", "audio/wav"}}),
                 422, "unprocessable_input");
    expect_error(c.Post("/predict", upload_form(jfk())), 404, "not_found");
    expect_error(c.Get("/v1/audio/transcriptions"), 405, "method_not_allowed");
}

TEST(ServerAudio, WordListTranscriptionsEqualTheCli) {
    const std::string model = std::string(D2V_SOURCE_DIR) + "/models/digits-ctc.gguf";
    const std::string sample = std::string(D2V_SOURCE_DIR) + "/samples/three_one_four.wav";
    for (const std::string words : {"zero one two three four five six seven eight nine", "one four"}) {
        ServerProcess s("--quiet --words " + quoted(words) + " -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const Json cli = cli_json(D2V_AUDIO_CLI, "--json --timestamps --words " + quoted(words) + " -m " + model + " " + sample)["results"][0];
        const Json v = json_of(s.client().Post("/v1/audio/transcriptions", upload_form(sample, "verbose_json")));
        EXPECT_EQ(v["text"], cli["transcript"]) << words;
        EXPECT_EQ(v["words"].size(), cli["words"].size()) << words;
        EXPECT_EQ(json_of(s.client().Get("/info"))["words"].size(), words == "one four" ? 2u : 10u);
        if (words == "one four") EXPECT_EQ(v["text"].get<std::string>().find("THREE"), std::string::npos) << v;
        else EXPECT_EQ(v["text"], "THREE ONE FOUR");
    }
    // a word list needs a CTC model whose vocabulary spells every word: exit 1 while loading
    for (const std::string& args : {"--words one -m " + std::string(D2V_SOURCE_DIR) + "/models/digits-classify.gguf",
                                   "--words 'one zebra' -m " + model}) {
        ServerProcess s(args, 60, false);
        EXPECT_EQ(s.wait_exit(60), 1) << args << "\n" << s.log();
    }
}

TEST(ServerAudio, ClassificationFramesAndXVectorEqualTheCli) {
    {
        const std::string model = fixture("audio/seqcls/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        auto c = s.client();
        const Json cli = cli_json(D2V_AUDIO_CLI, "--json -k 3 -m " + model + " " + jfk())["results"][0]["labels"];
        const Json j = json_of(c.Post("/predict?top_k=3", upload_form(jfk())));
        ASSERT_EQ(j.size(), cli.size());
        for (size_t i = 0; i < j.size(); ++i) {
            EXPECT_EQ(j[i]["label"], cli[i]["label"]);
            EXPECT_NEAR(j[i]["score"].get<double>(), cli[i]["score"].get<double>(), kTol);
        }
        // A raw audio/* body works too.
        EXPECT_EQ(json_of(c.Post("/predict?top_k=3", slurp(jfk()), "audio/wav")), j);
        expect_error(c.Post("/predict?top_k=0", upload_form(jfk())), 400, "bad_request");
    }
    {
        const std::string model = fixture("audio/frame/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const Json frames = cli_json(D2V_AUDIO_CLI, "--json -m " + model + " " + jfk())["results"][0]["frames"];
        const Json j = json_of(s.client().Post("/predict", upload_form(jfk())));
        // The segments expand back to the CLI's label per frame.
        std::vector<std::string> expanded;
        const double frame = j["segments"].back()["end"].get<double>() / double(frames.size());
        for (const auto& seg : j["segments"])
            for (auto n = std::lround((seg["end"].get<double>() - seg["start"].get<double>()) / frame); n > 0; --n)
                expanded.push_back(seg["label"]);
        EXPECT_EQ(Json(expanded), frames);
    }
    {
        const std::string model = fixture("audio/xvector/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const Json cli = cli_json(D2V_AUDIO_CLI, "--json -m " + model + " " + jfk())["results"][0]["embedding"];
        const Json j = json_of(s.client().Post("/embed", upload_form(jfk())));
        ASSERT_EQ(j.size(), 1u);
        expect_close(j[0], cli, "x-vector");
    }
}

// ---- text

TEST(ServerText, EmbedTokenizeAndOpenAiEmbeddingsEqualTheCli) {
    const std::string model = fixture("text/model_absolute/model.gguf");
    ServerProcess s("--quiet -m " + model);
    ASSERT_TRUE(s.ready) << s.log();
    auto c = s.client();
    const Json texts = Json::parse(slurp(fixture("text/inputs/wiki/texts.json")))["texts"];
    const std::string text = texts[1];
    const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " -p " + quoted(text))["embedding"];

    const Json raw = json_of(c.Post("/embed", Json{{"inputs", text}, {"normalize", false}}.dump(), "application/json"));
    ASSERT_EQ(raw.size(), 1u);
    expect_close(raw[0], cli, "embedding");
    const Json unit = json_of(c.Post("/embed", Json{{"inputs", Json::array({text, text})}}.dump(), "application/json"));
    ASSERT_EQ(unit.size(), 2u);
    double norm = 0, dot = 0, cli_norm = 0;
    for (size_t i = 0; i < cli.size(); ++i) {
        norm += std::pow(unit[1][i].get<double>(), 2);
        dot += unit[1][i].get<double>() * cli[i].get<double>();
        cli_norm += std::pow(cli[i].get<double>(), 2);
    }
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_NEAR(dot / std::sqrt(cli_norm), 1.0, 1e-5);  // normalize: the CLI's direction, unit length

    const Json oa = json_of(c.Post("/v1/embeddings", Json{{"input", text}, {"model", "m"}}.dump(), "application/json"));
    EXPECT_EQ(oa["object"], "list");
    expect_close(oa["data"][0]["embedding"], unit[0], "v1/embeddings");

    // /tokenize equals Transformers' tokenizer (the fixture's input_ids, padding dropped).
    const d2v::NdArray ids = d2v::read_npy(fixture("text/inputs/wiki/input_ids.npy"));
    const d2v::NdArray mask = d2v::read_npy(fixture("text/inputs/wiki/attention_mask.npy"));
    const Json tok = json_of(c.Post("/tokenize", Json{{"inputs", texts}}.dump(), "application/json"));
    ASSERT_EQ(tok.size(), texts.size());
    const int64_t T = ids.shape[1];
    for (size_t b = 0; b < texts.size(); ++b) {
        std::vector<int64_t> expected;
        for (int64_t t = 0; t < T; ++t)
            if (mask.data[size_t(int64_t(b) * T + t)] != 0) expected.push_back(int64_t(ids.data[size_t(int64_t(b) * T + t)]));
        std::vector<int64_t> got;
        for (const auto& token : tok[b]) got.push_back(token["id"]);
        if (int64_t(expected.size()) == T) {  // a row the fixture truncated: equal up to its closing </s>
            expected.pop_back();
            got.resize(std::min(got.size(), expected.size()));
        }
        EXPECT_EQ(got, expected) << "text " << b;
    }
    EXPECT_TRUE(tok[0][0]["special"].get<bool>());

    // Errors: 415, 400, 422 (invalid UTF-8; too long without truncate; batch too large).
    expect_error(c.Post("/embed", "{\"inputs\": \"x\"}", "text/plain"), 415, "unsupported_media_type");
    expect_error(c.Post("/embed", "{\"inputs\": ", "application/json"), 400, "bad_request");
    expect_error(c.Post("/embed", "{\"inputs\": 3}", "application/json"), 400, "bad_request");
    expect_error(c.Post("/embed", std::string("{\"inputs\": \"caf\xC3\x28\"}"), "application/json"), 422, "invalid_utf8");
    std::string long_text;
    for (int i = 0; i < 2000; ++i) long_text += "word ";
    expect_error(c.Post("/embed", Json{{"inputs", long_text}}.dump(), "application/json"), 422, "unprocessable_input");
    EXPECT_EQ(json_of(c.Post("/embed", Json{{"inputs", long_text}, {"truncate", true}}.dump(), "application/json")).size(), 1u);
    expect_error(c.Post("/embed", Json{{"inputs", Json(std::vector<std::string>(33, "a"))}}.dump(), "application/json"), 422, "validation");
}

TEST(ServerText, HeadsEqualTheCli) {
    {
        const std::string model = fixture("text/seqcls_single/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string a = "The cat sat on the mat.", b = "A cat was sitting on the mat.";
        const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " -p " + quoted(a) + " --pair " + quoted(b))["labels"];
        const Json j = json_of(s.client().Post("/predict", Json{{"inputs", {a, b}}}.dump(), "application/json"));
        ASSERT_GE(j.size(), cli.size());
        for (size_t i = 0; i < cli.size(); ++i) {
            EXPECT_EQ(j[i]["label"], cli[i]["label"]);
            EXPECT_NEAR(j[i]["score"].get<double>(), cli[i]["score"].get<double>(), kTol);
        }
        const Json batch = json_of(s.client().Post("/predict", Json{{"inputs", {{a, b}, {a}}}}.dump(), "application/json"));
        ASSERT_EQ(batch.size(), 2u);
        EXPECT_EQ(batch[0], j);
    }
    {
        const std::string model = fixture("text/token_classification/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string text = "George Washington went to Washington";
        const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " -p " + quoted(text))["words"];
        const Json j = json_of(s.client().Post("/predict", Json{{"inputs", text}}.dump(), "application/json"));
        ASSERT_EQ(j.size(), cli.size());
        for (size_t i = 0; i < j.size(); ++i)
            for (const char* k : {"word", "label", "start", "end"}) EXPECT_EQ(j[i][k], cli[i][k]) << k;
    }
    {
        const std::string model = fixture("text/masked_lm/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string text = "The capital of France is <mask>.";
        const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " -p " + quoted(text))["masks"][0]["predictions"];
        const Json j = json_of(s.client().Post("/fill-mask", Json{{"inputs", text}}.dump(), "application/json"));
        ASSERT_EQ(j.size(), cli.size());
        for (size_t i = 0; i < j.size(); ++i) {
            EXPECT_EQ(j[i]["token"], cli[i]["token"]);
            EXPECT_EQ(j[i]["token_str"], cli[i]["token_str"]);
            EXPECT_NEAR(j[i]["score"].get<double>(), cli[i]["score"].get<double>(), kTol);
        }
        expect_error(s.client().Post("/fill-mask", Json{{"inputs", "no mask here"}}.dump(), "application/json"), 422, "unprocessable_input");
    }
    {
        const std::string model = fixture("text/question_answering/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string q = "Who went to Washington?", ctx = "George Washington went to Washington in the spring.";
        const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " --question " + quoted(q) + " --context " + quoted(ctx));
        const Json j = json_of(s.client().Post("/qa", Json{{"question", q}, {"context", ctx}}.dump(), "application/json"));
        EXPECT_EQ(j["answer"], cli["answer"]);
        EXPECT_EQ(j["start"], cli["start"]);  // ASCII: character offsets = the CLI's byte offsets
        EXPECT_EQ(j["end"], cli["end"]);
        EXPECT_NEAR(j["score"].get<double>(), cli["score"].get<double>(), kTol);
        expect_error(s.client().Post("/qa", Json{{"question", q}}.dump(), "application/json"), 400, "bad_request");
    }
    {
        const std::string model = fixture("text/multiple_choice/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string p = "A man sits down.";
        const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " -p " + quoted(p) + " --choice 'He eats.' --choice 'He flies.'");
        const Json j = json_of(s.client().Post("/choose", Json{{"inputs", p}, {"choices", {"He eats.", "He flies."}}}.dump(), "application/json"));
        ASSERT_EQ(j.size(), 2u);
        for (size_t i = 0; i < 2; ++i) {
            EXPECT_EQ(j[i]["label"], cli["choices"][i]["choice"]);
            EXPECT_NEAR(j[i]["score"].get<double>(), cli["choices"][i]["score"].get<double>(), kTol);
        }
    }
    {
        const std::string model = fixture("text/causal_lm/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string p = "Once upon a time";
        const Json cli = cli_json(D2V_TEXT_CLI, "--json -m " + model + " -p " + quoted(p) + " -n 8");
        const Json j = json_of(s.client().Post("/generate", Json{{"inputs", p}, {"parameters", {{"max_new_tokens", 8}}}}.dump(), "application/json"));
        EXPECT_EQ(j["generated_text"], cli["text"]);
        EXPECT_EQ(j["generated_ids"], cli["generated_ids"]);
        expect_error(s.client().Post("/generate", Json{{"inputs", p}, {"parameters", {{"max_new_tokens", -1}}}}.dump(), "application/json"),
                     400, "bad_request");
    }
}

// ---- vision

TEST(ServerVision, PredictSegmentEmbedEqualTheCli) {
    const std::string image = shared_data("images/coco_000000039769.png");
    {
        const std::string model = fixture("vision/models/image_classification/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const Json cli = cli_json(D2V_VISION_CLI, "--json -k 3 -m " + model + " " + image)["results"][0]["labels"];
        const Json j = json_of(s.client().Post("/predict?top_k=3", upload_form(image)));
        ASSERT_EQ(j.size(), cli.size());
        for (size_t i = 0; i < j.size(); ++i) {
            EXPECT_EQ(j[i]["label"], cli[i]["label"]);
            EXPECT_NEAR(j[i]["score"].get<double>(), cli[i]["score"].get<double>(), kTol);
        }
        expect_error(s.client().Post("/predict", httplib::MultipartFormDataItems{{"file", "\x89PNG\r\n\x1a\n truncated", "x.png", "image/png"}}),
                     422, "unprocessable_input");
        expect_error(s.client().Post("/predict", httplib::MultipartFormDataItems{{"image", "x", "x.png", "image/png"}}), 400, "bad_request");
    }
    {
        const std::string model = fixture("vision/models/semantic_segmentation/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const std::string out_dir = temp_path("server_seg");
        fs::create_directories(out_dir);
        const Json cli = cli_json(D2V_VISION_CLI, "--json -o " + out_dir + " -m " + model + " " + image)["results"][0];
        const Json j = json_of(s.client().Post("/segment?format=json", upload_form(image)));
        ASSERT_EQ(j["classes"].size(), cli["classes"].size());
        for (size_t i = 0; i < j["classes"].size(); ++i) {
            EXPECT_EQ(j["classes"][i]["label"], cli["classes"][i]["label"]);
            EXPECT_NEAR(j["classes"][i]["share"].get<double>(), cli["classes"][i]["share"].get<double>(), 1e-12);
        }
        // The PNG holds the same map: its pixel counts per id are the shares.
        auto png = s.client().Post("/segment", upload_form(image));
        ASSERT_TRUE(png);
        ASSERT_EQ(png->status, 200);
        EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
        const std::string png_path = temp_path("server_mask.png");
        write_file(png_path, png->body);
        const d2v::RgbImage mask = d2v::read_image(png_path);
        EXPECT_EQ(mask.width, cli["width"].get<int64_t>());
        EXPECT_EQ(mask.height, cli["height"].get<int64_t>());
        std::map<int, int64_t> counts;
        for (size_t p = 0; p < mask.rgb.size(); p += 3) ++counts[mask.rgb[p]];
        for (const auto& cls : cli["classes"])
            EXPECT_NEAR(double(counts[cls["id"].get<int>()]) / double(mask.width * mask.height), cls["share"].get<double>(), 1e-12);
    }
    {
        const std::string model = fixture("vision/models/model_base/model.gguf");
        ServerProcess s("--quiet -m " + model);
        ASSERT_TRUE(s.ready) << s.log();
        const Json cli = cli_json(D2V_VISION_CLI, "--json -m " + model + " " + image)["results"][0]["embedding"];
        const Json j = json_of(s.client().Post("/embed", slurp(image), "image/png"));
        ASSERT_EQ(j.size(), 1u);
        expect_close(j[0], cli, "vision embedding");
    }
}

// ---- service behaviour

TEST(ServerService, HealthInfoMetricsAndApiKey) {
    const std::string key_file = temp_path("server_key");
    write_file(key_file, "s3cret-key\n");
    ServerProcess s("--quiet --api-key-file " + key_file + " -m " + fixture("text/model_absolute/model.gguf"));
    ASSERT_TRUE(s.ready) << s.log();
    auto c = s.client();
    auto health = c.Get("/health");  // no key needed: load balancers probe it
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(Json::parse(health->body)["status"], "ok");
    expect_error(c.Get("/info"), 401, "unauthorized");
    expect_error(c.Post("/embed", "{\"inputs\":\"a\"}", "application/json"), 401, "unauthorized");
    expect_error(c.Post("/embed", httplib::Headers{{"Authorization", "Bearer s3cret-kez"}}, "{\"inputs\":\"a\"}", "application/json"), 401,
                 "unauthorized");
    const httplib::Headers auth{{"Authorization", "Bearer s3cret-key"}};
    EXPECT_EQ(json_of(c.Post("/embed", auth, "{\"inputs\":\"a\"}", "application/json")).size(), 1u);
    const Json info = json_of(c.Get("/info", auth));
    EXPECT_EQ(info["model_class"], "Data2VecTextModel");
    EXPECT_TRUE(info["config"].is_object());
    EXPECT_EQ(info["version"], D2V_VERSION_STRING);
    const std::vector<std::string> expected = {"d2v_requests_total{route=\"/embed\",status=\"401\"} 2",
                                               "d2v_requests_total{route=\"/embed\",status=\"200\"} 1",
                                               "d2v_items_processed_total{route=\"/embed\"} 1",
                                               "d2v_request_duration_seconds_bucket{route=\"/embed\",le=\"+Inf\"} 3", "d2v_queue_depth 0"};
    const std::string metrics = metrics_with(c, expected, auth);
    for (const auto& e : expected) EXPECT_NE(metrics.find(e), std::string::npos) << e << " in\n" << metrics;
}

TEST(ServerService, BodyLimitIs413) {
    ServerProcess s("--quiet --max-body-mb 1 -m " + fixture("audio/ctc/model.gguf"));
    ASSERT_TRUE(s.ready) << s.log();
    const std::string big(2u << 20, 'x');
    expect_error(s.client().Post("/v1/audio/transcriptions", httplib::MultipartFormDataItems{{"file", big, "a.wav", "audio/wav"}}), 413,
                 "payload_too_large");
    auto health = s.client().Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
}

// 16 clients x 20 requests against 2 workers and a queue of 4: every request gets 200 or 429
// (none lost, none failed), the answers are right, and the server is healthy afterwards.
TEST(ServerService, LoadSixteenClientsTwentyRequestsEach) {
    const std::string model = fixture("audio/ctc/model.gguf");
    ServerProcess s("--quiet --workers 2 -t 1 --max-queue 4 -m " + model);
    ASSERT_TRUE(s.ready) << s.log();
    const std::string expected = cli_json(D2V_AUDIO_CLI, "--json -m " + model + " " + jfk())["results"][0]["transcript"];
    const auto form = upload_form(jfk(), "json");
    std::atomic<int> ok{0}, busy{0}, wrong{0}, failed{0};
    std::mutex m;
    std::string first_failure;
    std::vector<std::thread> clients;
    for (int t = 0; t < 16; ++t)
        clients.emplace_back([&] {
            auto c = s.client(120);
            for (int i = 0; i < 20; ++i) {
                auto r = c.Post("/v1/audio/transcriptions", form);
                if (r && r->status == 200) {
                    const Json j = Json::parse(r->body, nullptr, false);
                    (j.is_object() && j.value("text", "") == expected ? ok : wrong)++;
                } else if (r && r->status == 429 && r->has_header("Retry-After")) {
                    busy++;
                } else {
                    failed++;
                    std::lock_guard<std::mutex> lock(m);
                    if (first_failure.empty()) first_failure = r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
                }
            }
        });
    for (auto& t : clients) t.join();
    EXPECT_EQ(failed.load(), 0) << first_failure;
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(ok + busy, 320);
    EXPECT_GT(ok.load(), 0);
    std::printf("load: %d x 200, %d x 429\n", ok.load(), busy.load());
    auto health = s.client().Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    const std::string counted = "d2v_requests_total{route=\"/v1/audio/transcriptions\",status=\"200\"} " + std::to_string(ok.load()) + "\n";
    auto mc = s.client();
    const std::string metrics = metrics_with(mc, {counted});
    EXPECT_NE(metrics.find(counted), std::string::npos) << metrics;
}

// A request still unanswered at --timeout gets 503 (and, if it was queued, never runs); a full
// queue answers 429 with Retry-After at once. Deterministic: the timeout (1 ms) is far below any run.
TEST(ServerService, TimeoutIs503AndQueueFullIs429) {
    const std::string long_wav = temp_path("server_long.wav");
    write_tone_wav(long_wav, 600);  // 10 min (19 MB): keeps the one worker busy for a while
    ServerProcess s("--quiet --workers 1 -t 1 --max-queue 1 --timeout 0.001 -m " + fixture("audio/ctc/model.gguf"));
    ASSERT_TRUE(s.ready) << s.log();
    const auto form = upload_form(long_wav, "json");
    auto c = s.client();
    // 1. Runs on the worker; the client is answered 503 at the deadline while the run goes on. (If
    // the worker did not pick it up within the 1 ms, it was cancelled unrun: send another.)
    bool busy = false;
    for (int attempt = 0; attempt < 50 && !busy; ++attempt) {
        expect_error(c.Post("/v1/audio/transcriptions", form), 503, "timeout");
        for (int tries = 0; tries < 40 && !busy; ++tries) {
            auto m = c.Get("/metrics");
            busy = m && m->body.find("d2v_workers_busy 1\n") != std::string::npos;
            if (!busy) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    ASSERT_TRUE(busy);
    // 2. Waits in the queue behind it, times out (503); its cancelled entry holds the one queue slot.
    auto queued = c.Post("/v1/audio/transcriptions", form);
    expect_error(queued, 503, "timeout");
    EXPECT_TRUE(queued->has_header("Retry-After"));
    // 3. The queue is full: 429 with Retry-After, at once.
    auto full = c.Post("/v1/audio/transcriptions", form);
    expect_error(full, 429, "overloaded");
    EXPECT_EQ(full->get_header_value("Retry-After"), "1");
    auto health = c.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    std::remove(long_wav.c_str());
}

// SIGTERM while requests are queued and running: every accepted request is answered 200, then exit 0.
TEST(ServerService, SigtermFinishesAcceptedRequests) {
    const std::string model = fixture("audio/ctc/model.gguf");
    ServerProcess s("--quiet --workers 1 -t 1 --max-queue 16 -m " + model);
    ASSERT_TRUE(s.ready) << s.log();
    const std::string expected = cli_json(D2V_AUDIO_CLI, "--json -m " + model + " " + jfk())["results"][0]["transcript"];
    const auto form = upload_form(jfk(), "json");
    constexpr int kRequests = 6;
    std::vector<std::string> answers(kRequests);
    std::vector<std::atomic<int>> statuses(kRequests);
    for (auto& st : statuses) st = -1;
    std::vector<std::thread> clients;
    const JoinAll join_clients{clients};
    for (int i = 0; i < kRequests; ++i)
        clients.emplace_back([&, i] {
            auto r = s.client().Post("/v1/audio/transcriptions", form);
            if (r) answers[size_t(i)] = r->body, statuses[size_t(i)] = r->status;
        });
    // Wait (bounded) until all are accepted: one running, the rest queued. The answered ones are
    // counted before /metrics is read: one answered in between is then missed (another try), never
    // counted twice (running in the snapshot and answered), which let SIGTERM beat a request.
    bool accepted = false;
    for (int tries = 0; tries < 500 && !accepted; ++tries) {
        const auto answered = std::count_if(statuses.begin(), statuses.end(), [](const std::atomic<int>& st) { return st == 200; });
        auto m = s.client().Get("/metrics");
        if (m && m->status == 200) {
            std::smatch depth, busy;
            if (std::regex_search(m->body, depth, std::regex("d2v_queue_depth ([0-9]+)")) &&
                std::regex_search(m->body, busy, std::regex("d2v_workers_busy ([0-9]+)")))
                accepted = std::stoi(depth[1]) + std::stoi(busy[1]) + answered >= kRequests;
        }
        if (!accepted) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(accepted);
    EXPECT_EQ(s.stop(SIGTERM, 120), 0) << s.log();
    for (auto& t : clients) t.join();
    for (int i = 0; i < kRequests; ++i) {
        EXPECT_EQ(statuses[size_t(i)].load(), 200) << answers[size_t(i)];
        EXPECT_EQ(Json::parse(answers[size_t(i)], nullptr, false).value("text", ""), expected);
    }
}

// A queued request whose client hangs up is dropped before it runs.
TEST(ServerService, ClientGoneIsDroppedBeforeRunning) {
    ServerProcess s("--quiet --workers 1 -t 1 --max-queue 16 -m " + fixture("audio/ctc/model.gguf"));
    ASSERT_TRUE(s.ready) << s.log();
    // Keep the one worker busy with a minute of audio, then queue a request and hang up.
    const std::string tone = temp_path("server_tone.wav");
    write_tone_wav(tone, 60);
    std::vector<std::thread> busy;
    const JoinAll join_busy{busy};
    busy.emplace_back([&] { s.client(300).Post("/v1/audio/transcriptions", upload_form(tone, "json")); });
    bool running = false;
    for (int tries = 0; tries < 1000 && !running; ++tries) {
        auto m = s.client().Get("/metrics");
        running = m && m->body.find("d2v_workers_busy 1\n") != std::string::npos;
        if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(running);
    // A raw connection: the whole request, then close without reading.
    const std::string wav = slurp(jfk());
    const std::string boundary = "d2vtestboundary";
    const std::string part = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                             "Content-Type: audio/wav\r\n\r\n" + wav + "\r\n--" + boundary + "--\r\n";
    const std::string request = "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=" +
                                boundary + "\r\nContent-Length: " + std::to_string(part.size()) + "\r\n\r\n" + part;
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(s.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the server queue it
    close(fd);
    busy[0].join();
    std::string body_text;
    for (int tries = 0; tries < 200; ++tries) {  // the drop is counted when the worker reaches it
        auto m = s.client().Get("/metrics");
        if (m) body_text = m->body;
        if (body_text.find("d2v_requests_rejected_total{reason=\"client_gone\"} 1") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(body_text.find("d2v_requests_rejected_total{reason=\"client_gone\"} 1"), std::string::npos) << body_text;
    EXPECT_NE(body_text.find("d2v_items_processed_total{route=\"/v1/audio/transcriptions\"} 1"), std::string::npos) << body_text;
    std::remove(tone.c_str());
}

// GET /health answers 503 {"status":"loading"} while the model loads and every other route 503 with
// Retry-After; once loaded, 200. --debug-load-gate (not in --help) holds the load until the test
// creates the file, so the loading state lasts exactly as long as the test needs. A model file that
// turns out bad once loading starts ends the server with exit 1.
TEST(ServerService, LoadingIs503ThenReadyOrExit1) {
    // Named by pid: another build's test run on this machine must not open or close our gate.
    const std::string gate = temp_path("server_load_gate_" + std::to_string(getpid()));
    std::remove(gate.c_str());
    {
        ServerProcess s("--quiet --debug-load-gate " + gate + " -m " + fixture("text/model_absolute/model.gguf"), 60, false);
        ASSERT_GT(s.port, 0) << s.log();
        auto c = s.client();
        auto health = c.Get("/health");
        ASSERT_TRUE(health);
        EXPECT_EQ(health->status, 503);
        EXPECT_EQ(Json::parse(health->body, nullptr, false), Json::parse(R"({"status":"loading"})")) << health->body;
        auto expect_loading = [](const httplib::Result& r) {
            expect_error(r, 503, "unavailable");
            if (r) {
                EXPECT_EQ(r->get_header_value("Retry-After"), "1");
            }
        };
        expect_loading(c.Get("/info"));
        expect_loading(c.Get("/metrics"));
        expect_loading(c.Post("/embed", "{\"inputs\":\"a\"}", "application/json"));
        write_file(gate, "");
        bool ok = false;
        for (int tries = 0; tries < 600 && !ok; ++tries) {  // <= 30 s
            auto h = c.Get("/health");
            ok = h && h->status == 200 && Json::parse(h->body, nullptr, false) == Json::parse(R"({"status":"ok"})");
            if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ASSERT_TRUE(ok) << s.log();
        EXPECT_EQ(json_of(c.Post("/embed", "{\"inputs\":\"a\"}", "application/json")).size(), 1u);
        EXPECT_EQ(json_of(c.Get("/info"))["model_class"], "Data2VecTextModel");
    }
    std::remove(gate.c_str());
    {
        const std::string bad = temp_path("server_bad_gated_" + std::to_string(getpid()) + ".gguf");
        write_file(bad, "GGUF but not really a model file");
        ServerProcess s("--debug-load-gate " + gate + " -m " + bad, 60, false);
        ASSERT_GT(s.port, 0) << s.log();
        auto health = s.client().Get("/health");
        ASSERT_TRUE(health);
        EXPECT_EQ(health->status, 503);
        write_file(gate, "");
        EXPECT_EQ(s.wait_exit(60), 1) << s.log();
        std::string log;
        for (int tries = 0; tries < 100 && log.find("d2v-server: error:") == std::string::npos; ++tries) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            log = s.log();
        }
        EXPECT_NE(log.find("d2v-server: error:"), std::string::npos) << log;
        EXPECT_FALSE(s.client().Get("/health"));  // the port is closed
        std::remove(bad.c_str());
    }
    std::remove(gate.c_str());
}

}  // namespace
