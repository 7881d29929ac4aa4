// The README's d2v-server block, run as written: every `curl` line goes to a real d2v-server started
// with the model of the `build/d2v-server -m MODEL` line above it (plus --port 0; the curl line's
// localhost:8080 becomes the port the server printed, nothing else changes). Each answer must be
// HTTP 200 with the route's shape, and where the CLI computes the same thing, equal to the CLI's
// --json output (1e-5, as tests/test_server.cpp). A curl line this test cannot map to a model and a
// check fails the test, and so does a check no README line uses: README and test cannot drift.
#include "server_util.h"  // first: d2v/Eigen before httplib.h
#include "d2v/d2v.hpp"
#include "d2v/model_file.h"
#include "d2v/version.h"

#include <functional>
#include <map>
#include <set>

namespace {

// One curl line's answer.
struct Answer {
    std::string line, model;  // the README line; the model path as the README writes it
    int status = 0;
    std::string content_type, body;
    Json json;  // the body parsed (discarded when it is not JSON)
};

using Check = std::function<void(const Answer&)>;

std::string match(const std::string& line, const std::string& pattern) {
    std::smatch m;
    return std::regex_search(line, m, std::regex(pattern)) ? std::string(m[1]) : std::string();
}
// The -d '...' body, the file=@PATH upload and a ?name=N query parameter of a README curl line.
Json data_of(const std::string& line) { return Json::parse(match(line, "-d '([^']*)'"), nullptr, false); }
std::string file_of(const std::string& line) { return match(line, "file=@([^ ']+)"); }
std::string query_of(const std::string& line, const std::string& name) { return match(line, "[?&]" + name + "=([^ '&]+)"); }
// A JSON string as a single-quoted shell word, for the CLI's command line.
std::string arg(const Json& s) { return quoted(s.get<std::string>()); }

void expect_labels(const Json& got, const Json& cli, const std::string& label_key = "label") {
    ASSERT_TRUE(got.is_array());
    ASSERT_EQ(got.size(), cli.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i]["label"], cli[i][label_key]);
        EXPECT_NEAR(got[i]["score"].get<double>(), cli[i]["score"].get<double>(), kTol);
    }
}

// One row of unit length pointing the CLI's way (normalize: true / OpenAI embeddings).
void expect_unit_like(const Json& row, const Json& cli) {
    ASSERT_EQ(row.size(), cli.size());
    double norm = 0, dot = 0, cli_norm = 0;
    for (size_t i = 0; i < cli.size(); ++i) {
        norm += std::pow(row[i].get<double>(), 2);
        dot += row[i].get<double>() * cli[i].get<double>();
        cli_norm += std::pow(cli[i].get<double>(), 2);
    }
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_NEAR(dot / std::sqrt(cli_norm), 1.0, 1e-5);
}

Json audio_cli(const Answer& a, const std::string& options) {
    return cli_json(D2V_AUDIO_CLI, "--json " + options + " -m " + a.model + " " + file_of(a.line))["results"][0];
}
Json vision_cli(const Answer& a, const std::string& options) {
    return cli_json(D2V_VISION_CLI, "--json " + options + " -m " + a.model + " " + file_of(a.line))["results"][0];
}
Json text_cli(const Answer& a, const std::string& options) { return cli_json(D2V_TEXT_CLI, "--json -m " + a.model + " " + options); }

void check_transcription(const Answer& a) {
    const Json cli = audio_cli(a, "--timestamps");
    EXPECT_EQ(a.json["text"], cli["transcript"]);
    if (a.line.find("verbose_json") == std::string::npos) return;
    ASSERT_EQ(a.json["words"].size(), cli["words"].size()) << a.body;
    for (size_t i = 0; i < cli["words"].size(); ++i) {
        EXPECT_EQ(a.json["words"][i]["word"], cli["words"][i]["word"]);
        EXPECT_NEAR(a.json["words"][i]["start"].get<double>(), cli["words"][i]["start"].get<double>(), 1e-9);
        EXPECT_NEAR(a.json["words"][i]["end"].get<double>(), cli["words"][i]["end"].get<double>(), 1e-9);
    }
    EXPECT_GT(a.json["duration"].get<double>(), 0.0);
}

void check_info(const Answer& a) {
    EXPECT_EQ(a.json["model_class"], d2v::ModelFile(a.model).model_class());
    EXPECT_TRUE(a.json["config"].is_object());
    EXPECT_TRUE(a.json["limits"].is_object());
    EXPECT_EQ(a.json["version"], D2V_VERSION_STRING);
    ASSERT_TRUE(a.json["routes"].is_array());
    EXPECT_FALSE(a.json["routes"].empty());
}

void check_metrics(const Answer& a) {
    EXPECT_EQ(a.content_type.rfind("text/plain", 0), 0u) << a.content_type;
    for (const char* needle : {"# TYPE d2v_requests_total counter\n", "d2v_requests_total{route=\"/health\",status=\"200\"} ",
                               "# TYPE d2v_request_duration_seconds histogram\n", "d2v_queue_depth 0\n"})
        EXPECT_NE(a.body.find(needle), std::string::npos) << needle << " in\n" << a.body;
}

void check_frames(const Answer& a) {
    const Json frames = audio_cli(a, "")["frames"];
    const Json& segments = a.json["segments"];
    ASSERT_TRUE(segments.is_array() && !segments.empty()) << a.body;
    // The segments expand back to the CLI's label per frame.
    std::vector<std::string> expanded;
    const double frame = segments.back()["end"].get<double>() / double(frames.size());
    for (const auto& seg : segments) {
        EXPECT_LT(seg["start"].get<double>(), seg["end"].get<double>());
        for (auto n = std::lround((seg["end"].get<double>() - seg["start"].get<double>()) / frame); n > 0; --n)
            expanded.push_back(seg["label"]);
    }
    EXPECT_EQ(Json(expanded), frames);
}

void check_one_embedding(const Answer& a, const Json& cli) {
    ASSERT_TRUE(a.json.is_array());
    ASSERT_EQ(a.json.size(), 1u);
    expect_close(a.json[0], cli, a.line);
}

void check_text_embed(const Answer& a) {
    const Json data = data_of(a.line);
    ASSERT_TRUE(data["inputs"].is_string()) << "this check compares one text with d2v-text";
    const Json cli = text_cli(a, "-p " + arg(data["inputs"]))["embedding"];
    ASSERT_EQ(a.json.size(), 1u);
    if (data.value("normalize", true)) expect_unit_like(a.json[0], cli);  // TEI's default: normalized
    else expect_close(a.json[0], cli, a.line);
}

void check_openai_embeddings(const Answer& a) {
    Json inputs = data_of(a.line)["input"];
    if (inputs.is_string()) inputs = Json::array({inputs});
    EXPECT_EQ(a.json["object"], "list");
    ASSERT_EQ(a.json["data"].size(), inputs.size()) << a.body;
    for (size_t i = 0; i < inputs.size(); ++i) {
        EXPECT_EQ(a.json["data"][i]["index"], i);
        expect_unit_like(a.json["data"][i]["embedding"], text_cli(a, "-p " + arg(inputs[i]))["embedding"]);
    }
}

void check_tokenize(const Answer& a) {
    Json inputs = data_of(a.line)["inputs"];
    if (inputs.is_string()) inputs = Json::array({inputs});
    ASSERT_EQ(a.json.size(), inputs.size()) << a.body;
    for (const auto& tokens : a.json) {
        ASSERT_GE(tokens.size(), 3u);  // <s> ... </s>
        for (const char* k : {"id", "text", "start", "stop", "special"}) EXPECT_TRUE(tokens[0].contains(k)) << k;
        EXPECT_TRUE(tokens.front()["special"].get<bool>());
        EXPECT_TRUE(tokens.back()["special"].get<bool>());
    }
}

void check_pair_classification(const Answer& a) {
    const Json inputs = data_of(a.line)["inputs"];
    ASSERT_TRUE(inputs.is_array() && inputs.size() == 2) << "this check sends a pair to d2v-text";
    const Json cli = text_cli(a, "-p " + arg(inputs[0]) + " --pair " + arg(inputs[1]))["labels"];
    ASSERT_GE(a.json.size(), cli.size());
    expect_labels(Json(std::vector<Json>(a.json.begin(), a.json.begin() + std::ptrdiff_t(cli.size()))), cli);
}

void check_token_classification(const Answer& a) {
    const Json cli = text_cli(a, "-p " + arg(data_of(a.line)["inputs"]))["words"];
    ASSERT_EQ(a.json.size(), cli.size()) << a.body;
    for (size_t i = 0; i < cli.size(); ++i)
        for (const char* k : {"word", "label", "start", "end"}) EXPECT_EQ(a.json[i][k], cli[i][k]) << k;
}

void check_fill_mask(const Answer& a) {
    const Json cli = text_cli(a, "-p " + arg(data_of(a.line)["inputs"]))["masks"][0]["predictions"];
    ASSERT_EQ(a.json.size(), cli.size()) << a.body;
    for (size_t i = 0; i < cli.size(); ++i) {
        EXPECT_EQ(a.json[i]["token"], cli[i]["token"]);
        EXPECT_EQ(a.json[i]["token_str"], cli[i]["token_str"]);
        EXPECT_NEAR(a.json[i]["score"].get<double>(), cli[i]["score"].get<double>(), kTol);
    }
}

void check_qa(const Answer& a) {
    const Json data = data_of(a.line);
    const Json cli = text_cli(a, "--question " + arg(data["question"]) + " --context " + arg(data["context"]));
    for (const char* k : {"answer", "start", "end"}) EXPECT_EQ(a.json[k], cli[k]) << k;  // ASCII: characters = bytes
    EXPECT_NEAR(a.json["score"].get<double>(), cli["score"].get<double>(), kTol);
}

void check_choose(const Answer& a) {
    const Json data = data_of(a.line);
    std::string choices;
    for (const auto& c : data["choices"]) choices += " --choice " + arg(c);
    expect_labels(a.json, text_cli(a, "-p " + arg(data["inputs"]) + choices)["choices"], "choice");
}

void check_generate(const Answer& a) {
    const Json data = data_of(a.line);
    const int n = data["parameters"].value("max_new_tokens", 20);
    const Json cli = text_cli(a, "-p " + arg(data["inputs"]) + " -n " + std::to_string(n));
    EXPECT_EQ(a.json["generated_text"], cli["text"]);
}

void check_segment(const Answer& a) {
    const Json cli = vision_cli(a, "-o " + temp_path("readme_seg"));
    const std::string png_file = match(a.line, "-o ([^ ]+)");
    if (png_file.empty()) {  // ?format=json
        ASSERT_EQ(a.json["classes"].size(), cli["classes"].size()) << a.body;
        for (size_t i = 0; i < cli["classes"].size(); ++i) {
            EXPECT_EQ(a.json["classes"][i]["label"], cli["classes"][i]["label"]);
            EXPECT_NEAR(a.json["classes"][i]["share"].get<double>(), cli["classes"][i]["share"].get<double>(), 1e-12);
        }
        return;
    }
    EXPECT_EQ(a.content_type, "image/png");
    ASSERT_EQ(slurp(png_file).compare(0, 8, "\x89PNG\r\n\x1a\n"), 0) << png_file << " is not a PNG";
    const d2v::RgbImage mask = d2v::read_image(png_file);
    EXPECT_EQ(mask.width, cli["width"].get<int64_t>());
    EXPECT_EQ(mask.height, cli["height"].get<int64_t>());
}

// What each (README model, route) must answer. The README's curl lines map onto these keys.
std::map<std::pair<std::string, std::string>, Check> checks() {
    const std::string ctc = "models/digits-ctc.gguf", text = "tests/fixtures/text/", vision = "tests/fixtures/vision/models/";
    return {
        {{ctc, "POST /v1/audio/transcriptions"}, check_transcription},
        {{ctc, "GET /health"}, [](const Answer& a) { EXPECT_EQ(a.json, Json::parse(R"({"status":"ok"})")); }},
        {{ctc, "GET /info"}, check_info},
        {{ctc, "GET /metrics"}, check_metrics},
        {{"models/digits-classify.gguf", "POST /predict"},
         [](const Answer& a) { expect_labels(a.json, audio_cli(a, "-k " + query_of(a.line, "top_k"))["labels"]); }},
        {{"tests/fixtures/audio/frame/model.gguf", "POST /predict"}, check_frames},
        {{"tests/fixtures/audio/xvector/model.gguf", "POST /embed"},
         [](const Answer& a) { check_one_embedding(a, audio_cli(a, "")["embedding"]); }},
        {{text + "model_absolute/model.gguf", "POST /embed"}, check_text_embed},
        {{text + "model_absolute/model.gguf", "POST /v1/embeddings"}, check_openai_embeddings},
        {{text + "model_absolute/model.gguf", "POST /tokenize"}, check_tokenize},
        {{text + "seqcls_single/model.gguf", "POST /predict"}, check_pair_classification},
        {{text + "token_classification/model.gguf", "POST /predict"}, check_token_classification},
        {{text + "masked_lm/model.gguf", "POST /fill-mask"}, check_fill_mask},
        {{text + "question_answering/model.gguf", "POST /qa"}, check_qa},
        {{text + "multiple_choice/model.gguf", "POST /choose"}, check_choose},
        {{text + "causal_lm/model.gguf", "POST /generate"}, check_generate},
        {{vision + "image_classification/model.gguf", "POST /predict"},
         [](const Answer& a) { expect_labels(a.json, vision_cli(a, "-k " + query_of(a.line, "top_k"))["labels"]); }},
        {{vision + "semantic_segmentation/model.gguf", "POST /segment"}, check_segment},
        {{vision + "model_base/model.gguf", "POST /embed"}, [](const Answer& a) { check_one_embedding(a, vision_cli(a, "")["embedding"]); }},
    };
}

// The lines of the first ```sh block in the README's "## HTTP server" section.
std::vector<std::string> readme_server_block() {
    const std::string readme = slurp(std::string(D2V_SOURCE_DIR) + "/README.md");
    const size_t section = readme.find("\n## HTTP server\n");
    if (section == std::string::npos) return {};
    const size_t open = readme.find("\n```sh\n", section), end = readme.find("\n```\n", open + 1);
    if (open == std::string::npos || end == std::string::npos || readme.find("\n## ", section + 1) < open) return {};
    std::vector<std::string> lines;
    std::stringstream block(readme.substr(open + 7, end - open - 7));
    for (std::string line; std::getline(block, line);) lines.push_back(line);
    return lines;
}

struct CurlLine {
    std::string line, server_args, model, key;
};

// Runs one README curl line in `dir` against `port`: the line itself, unchanged but for the port,
// with curl wrapped so the status and Content-Type follow the body (bounded: 60 s per request).
Answer run_curl(const CurlLine& c, int port, const std::string& dir) {
    Answer a;
    a.line = c.line;
    a.model = c.model;
    const std::string line = std::regex_replace(c.line, std::regex("localhost:8080"), "localhost:" + std::to_string(port));
    const std::string script = dir + "/curl_line.sh";
    write_file(script, "cd " + quoted(dir) +
                           "\ncurl() { command curl --silent --show-error --max-time 60 --write-out '\\n@@d2v %{http_code} %{content_type}\\n' \"$@\"; }\n" +
                           line + "\n");
    const CliResult r = run_program_bounded("/bin/sh", script, 1024, 90);
    EXPECT_FALSE(r.timed_out) << c.line;
    const size_t mark = r.output.rfind("\n@@d2v ");
    if (mark == std::string::npos) {
        ADD_FAILURE() << "curl gave no status for: " << c.line << "\n" << r.output.substr(0, 2000);
        return a;
    }
    a.body = r.output.substr(0, mark);
    std::stringstream tail(r.output.substr(mark + 7));
    tail >> a.status >> a.content_type;
    a.json = Json::parse(a.body, nullptr, false);
    return a;
}

TEST(ServerReadme, EveryCurlLineRunsAsWrittenAndAnswersLikeTheCli) {
    const std::vector<std::string> block = readme_server_block();
    ASSERT_FALSE(block.empty()) << "README.md has no ```sh block under ## HTTP server";
    const auto table = checks();

    // 1. Map every curl line to the model of the server line above it, and to a check.
    std::vector<CurlLine> lines;
    std::string server_args, model;
    std::set<std::pair<std::string, std::string>> used;
    for (const std::string& line : block) {
        if (line.find_first_not_of(' ') == std::string::npos) continue;
        if (line.rfind("build/d2v-server ", 0) == 0) {
            server_args = line.substr(line.find(' ') + 1);
            server_args = server_args.substr(0, server_args.find('#'));
            model = match(server_args, "-m ([^ ]+)");
            EXPECT_FALSE(model.empty()) << "no -m MODEL in: " << line;
            EXPECT_TRUE(fs::exists(std::string(D2V_SOURCE_DIR) + "/" + model)) << model << " is not in the repository";
            continue;
        }
        if (line.rfind("curl ", 0) != 0) {
            ADD_FAILURE() << "neither a server nor a curl line: " << line;
            continue;
        }
        const std::string method = line.find(" -F ") != std::string::npos || line.find(" -d ") != std::string::npos ? "POST" : "GET";
        const std::string path = match(line, "localhost:8080(/[^ ?']*)");
        const std::pair<std::string, std::string> key{model, method + " " + path};
        if (model.empty() || path.empty() || !table.count(key)) {
            ADD_FAILURE() << "cannot map this README line to a model and a check (model '" << model << "', route '" << key.second
                          << "'); add it to checks() in tests/test_server_readme.cpp:\n  " << line;
            continue;
        }
        used.insert(key);
        lines.push_back({line, server_args, model, key.second});
    }
    for (const auto& [key, check] : table)
        EXPECT_TRUE(used.count(key)) << "the README has no curl line for " << key.first << " " << key.second;

    // 2. Run them, one server per server line, from a directory where the README's relative paths
    // resolve (links to the repository's folders) and where `-o mask.png` may write.
    const std::string dir = temp_path("readme_curl_" + std::to_string(getpid()));  // runs from other build dirs may overlap
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* sub : {"models", "samples", "tests"}) fs::create_symlink(std::string(D2V_SOURCE_DIR) + "/" + sub, dir + "/" + sub);
    const fs::path previous = fs::current_path();
    fs::current_path(dir);  // the server, the CLIs and curl all take the README's relative paths
    size_t i = 0;
    while (i < lines.size()) {
        const std::string args = lines[i].server_args;
        ServerProcess server(args + " --quiet --port 0 --host 127.0.0.1");
        EXPECT_TRUE(server.ready) << args << "\n" << server.log();
        for (; i < lines.size() && lines[i].server_args == args; ++i) {
            if (!server.ready) continue;
            SCOPED_TRACE(lines[i].line);
            const Answer a = run_curl(lines[i], server.port, dir);
            EXPECT_EQ(a.status, 200) << a.body.substr(0, 2000);
            if (a.status != 200) continue;
            const bool not_json = lines[i].key == "GET /metrics" || lines[i].line.find(" -o ") != std::string::npos;
            if (!not_json && a.json.is_discarded()) {
                ADD_FAILURE() << "not JSON: " << a.body.substr(0, 2000);
                continue;
            }
            // A README comment that is itself JSON documents the answer: it must be the real one.
            const size_t comment = lines[i].line.rfind(" # ");
            const Json documented = comment == std::string::npos ? Json() : Json::parse(lines[i].line.substr(comment + 3), nullptr, false);
            if (!documented.is_null() && !documented.is_discarded()) {
                EXPECT_EQ(a.json, documented);
            }
            table.at({lines[i].model, lines[i].key})(a);
        }
    }
    fs::current_path(previous);
    fs::remove_all(dir);
}

}  // namespace
