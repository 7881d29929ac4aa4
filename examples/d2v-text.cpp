// d2v-text: run a converted data2vec-text model on text. Fill-mask (ForMaskedLM), classify
// (ForSequenceClassification), ner (ForTokenClassification), qa (ForQuestionAnswering), choose
// (ForMultipleChoice), generate (ForCausalLM) or embeddings (Data2VecTextModel): whatever head the
// model file holds.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_common.h"
#include "d2v/text/generation.h"
#include "d2v/text/pipeline.h"
#include "d2v/text/postprocess.h"

using d2v::Error;
using d2v::Json;
using namespace d2v::text;

namespace {

const char* kUsage = R"(usage: d2v-text -m MODEL.gguf [options] -p TEXT

Runs a data2vec-text model (converted by weights_tools/convert.py) and does what its head does:
  fill-mask (ForMaskedLM)         top-k tokens for every <mask> in -p
  classify (ForSequenceClassification)  labels for -p (or the pair -p / --pair)
  ner (ForTokenClassification)    a label per word of -p
  qa (ForQuestionAnswering)       the answer span to --question in --context
  choose (ForMultipleChoice)      the best --choice to follow -p
  generate (ForCausalLM)          -n tokens continuing -p
  embeddings (Data2VecTextModel)  pooled output (or mean of the last hidden state)

options:
  -m, --model FILE        model file (required)
  -t, --threads N         threads (default: %d)
  -p, --prompt TEXT       input text
  -f, --file PATH         read the input text from a file
      --pair TEXT         second sequence (sentence-pair classification)
      --choice TEXT       a candidate ending (repeat, multiple choice)
      --question TEXT     question (QA)
      --context TEXT      context passage (QA)
  -n, --n-predict N       tokens to generate (default: 20)
      --sample            sample instead of greedy decoding
      --top-k N           sampling: keep the N most likely tokens (default: 0 = all)
      --top-p P           sampling: nucleus probability (default: 1.0)
      --temp T            sampling temperature (default: 1.0)
      --seed N            sampling seed (default: 0)
      --model-positions   generate with the model's own (RoBERTa) position ids instead of the
                          0, 1, 2, ... that Transformers' generate() uses (the default, for parity)
  -k N                    labels / tokens to print (default: 5)
      --max-answer-length N  QA: longest answer in tokens (default: 30)
      --no-truncate       refuse input longer than the model's maximum instead of truncating it
      --replace-invalid-utf8  replace invalid UTF-8 bytes with U+FFFD (as Python's errors="replace")
                          instead of refusing the input
      --json              print results as JSON
      --dump DIR          write inputs and outputs as .npy (input_ids, attention_mask, token_type_ids,
                          last_hidden_state, pooler_output, logits, start_logits, end_logits, ...)
      --output-hidden-states / --output-attentions   also compute/dump those
  -h, --help              show this help
      --version           print the version
)";

struct Options {
    std::string model, prompt, pair, question, context, dump_dir;
    bool has_prompt = false, has_question = false, has_context = false;
    std::vector<std::string> choices;
    int threads = cli::default_threads(), top_k_print = 5, max_answer_length = 30;
    bool json = false, no_truncate = false, replace_utf8 = false, hidden_states = false, attentions = false;
    GenerationOptions gen;
};

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open text file");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

Options parse(int argc, char** argv) {
    Options o;
    cli::Args args(argc, argv);
    while (!args.done()) {
        const std::string a = args.take();
        if (a == "-h" || a == "--help") {
            std::printf(kUsage, cli::default_threads());
            std::exit(0);
        } else if (a == "-m" || a == "--model") o.model = args.value(a);
        else if (a == "-t" || a == "--threads") o.threads = args.int_value(a, 1);
        else if (a == "-p" || a == "--prompt") { o.prompt = args.value(a); o.has_prompt = true; }
        else if (a == "-f" || a == "--file") { o.prompt = read_file(args.value(a)); o.has_prompt = true; }
        else if (a == "--pair") o.pair = args.value(a);
        else if (a == "--choice") o.choices.push_back(args.value(a));
        else if (a == "--question") { o.question = args.value(a); o.has_question = true; }
        else if (a == "--context") { o.context = args.value(a); o.has_context = true; }
        else if (a == "-n" || a == "--n-predict") o.gen.max_new_tokens = args.int_value(a, 0);
        else if (a == "--sample") o.gen.sample = true;
        else if (a == "--top-k") o.gen.top_k = args.int_value(a, 0);
        else if (a == "--top-p") o.gen.top_p = args.float_value(a, 0.0f, 1.0f, true);
        else if (a == "--temp") o.gen.temperature = args.float_value(a, 0.0f, 1e4f, true);
        else if (a == "--seed") o.gen.seed = args.uint64_value(a);
        else if (a == "--model-positions") o.gen.model_positions = true;
        else if (a == "-k") o.top_k_print = args.int_value(a, 1);
        else if (a == "--max-answer-length") o.max_answer_length = args.int_value(a, 1);
        else if (a == "--no-truncate") o.no_truncate = true;
        else if (a == "--replace-invalid-utf8") o.replace_utf8 = true;
        else if (a == "--json") o.json = true;
        else if (a == "--dump") o.dump_dir = args.value(a);
        else if (a == "--output-hidden-states") o.hidden_states = true;
        else if (a == "--output-attentions") o.attentions = true;
        else throw cli::UsageError("unknown option '" + a + "'");
    }
    if (o.model.empty()) throw cli::UsageError("no model given (-m MODEL.gguf)");
    return o;
}

// Valid UTF-8 passes; otherwise refuse (default) or replace like Python's errors="replace".
std::string checked_text(const std::string& text, const char* what, const Options& o) {
    bool invalid = false;
    std::string clean = sanitize_utf8(text, &invalid);
    if (!invalid) return text;
    if (!o.replace_utf8)
        throw Error(std::string(what) + " is not valid UTF-8; pass --replace-invalid-utf8 to replace invalid bytes with U+FFFD");
    std::fprintf(stderr, "d2v-text: warning: %s is not valid UTF-8; invalid bytes replaced with U+FFFD\n", what);
    return clean;
}

class Runner {
public:
    Runner(const Options& o, const TextPipeline& pipe) : o_(o), pipe_(pipe) {
        enc_.max_length = pipe.max_length();
        enc_.truncation = o.no_truncate ? "none" : "longest_first";
    }

    Encoding encode(const std::string& a, const std::string* b = nullptr, const char* strategy = nullptr) const {
        EncodeOptions e = enc_;
        if (strategy && !o_.no_truncate) e.truncation = strategy;
        Encoding out;
        try {
            out = b ? pipe_.tokenizer().encode_pair(a, *b, e) : pipe_.tokenizer().encode(a, e);
        } catch (const Error& err) {
            throw Error(std::string(err.what()) + " (the model takes at most " + std::to_string(enc_.max_length) + " tokens)");
        }
        if (out.truncated)
            std::fprintf(stderr, "d2v-text: warning: input truncated to %lld tokens (the model's maximum); --no-truncate refuses instead\n",
                         (long long)enc_.max_length);
        return out;
    }

    d2v::NamedOutputs run(const TextBatch& batch) const {
        d2v::NamedOutputs out = pipe_.run(batch, {o_.hidden_states, o_.attentions});
        if (!o_.dump_dir.empty()) {
            d2v::NamedOutputs dump = out;
            auto as_array = [&](const std::vector<std::vector<int64_t>>& rows) {
                d2v::NdArray a{{int64_t(rows.size()), rows.empty() ? 0 : int64_t(rows[0].size())}, {}, true};
                for (const auto& r : rows) for (int64_t v : r) a.data.push_back(float(v));
                return a;
            };
            dump["input_ids"] = as_array(batch.input_ids);
            dump["attention_mask"] = as_array(batch.attention_mask);
            dump["token_type_ids"] = as_array(batch.token_type_ids);
            cli::dump_outputs(o_.dump_dir, dump);
        }
        return out;
    }

private:
    const Options& o_;
    const TextPipeline& pipe_;
    EncodeOptions enc_;
};

std::vector<std::pair<int64_t, float>> ranked(const float* logits, int64_t n, int k, bool softmax = true) {
    std::vector<float> p(logits, logits + n);
    if (softmax) d2v::softmax_inplace(p.data(), n);
    std::vector<std::pair<int64_t, float>> r;
    for (int64_t i = 0; i < n; ++i) r.emplace_back(i, p[size_t(i)]);
    std::stable_sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.second > b.second; });
    r.resize(std::min<size_t>(r.size(), size_t(k)));
    return r;
}

int run(const Options& o) {
    d2v::set_num_threads(o.threads);
    TextPipeline pipe(o.model, "d2v-text");
    const auto& cfg = pipe.config();
    Runner runner(o, pipe);
    const auto& tok = pipe.tokenizer();
    Json doc{{"model", o.model}, {"model_class", pipe.file().model_class()}};
    auto need_prompt = [&]() {
        if (!o.has_prompt) throw cli::UsageError("this model needs input text (-p TEXT or -f FILE)");
        std::string text = checked_text(o.prompt, "input text", o);
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("input text is empty");
        return text;
    };

    switch (pipe.head()) {
        case TextHead::MaskedLM: {
            const std::string text = need_prompt();
            const Encoding e = runner.encode(text);
            std::vector<size_t> masks;
            for (size_t i = 0; i < e.input_ids.size(); ++i) if (e.input_ids[i] == tok.mask_id()) masks.push_back(i);
            if (masks.empty()) throw Error("fill-mask needs at least one <mask> token in the input text");
            const auto out = runner.run(to_batch({e}));
            const auto& logits = out.at("logits");
            const int64_t V = logits.shape[2];
            doc["masks"] = Json::array();
            for (size_t m : masks) {
                Json preds = Json::array();
                if (!o.json) std::printf("<mask> at token %zu:\n", m);
                for (auto [id, p] : ranked(logits.data.data() + m * size_t(V), V, o.top_k_print)) {
                    const std::string piece = tok.decode({id}, false);
                    preds.push_back({{"token", id}, {"token_str", piece}, {"score", p}});
                    if (!o.json) std::printf("  %-20s %.4f\n", ("'" + piece + "'").c_str(), p);
                }
                doc["masks"].push_back({{"position", m}, {"predictions", preds}});
            }
            break;
        }
        case TextHead::SequenceClassification: {
            const std::string text = need_prompt();
            const std::string pair = checked_text(o.pair, "--pair text", o);
            const Encoding e = o.pair.empty() ? runner.encode(text) : runner.encode(text, &pair);
            const auto out = runner.run(to_batch({e}));
            const auto& logits = out.at("logits");
            const int64_t C = logits.shape[1];
            std::string kind = cfg.problem_type.empty() ? (C == 1 ? "regression" : "single_label_classification") : cfg.problem_type;
            doc["problem_type"] = kind;
            if (kind == "regression") {
                doc["score"] = logits.data[0];
                if (!o.json) std::printf("score: %.6f\n", logits.data[0]);
                break;
            }
            std::vector<float> scores(logits.data.begin(), logits.data.begin() + C);
            if (kind == "multi_label_classification")
                for (auto& s : scores) s = 1.0f / (1.0f + std::exp(-s));
            doc["labels"] = Json::array();
            for (auto [id, p] : ranked(scores.data(), C, o.top_k_print, kind != "multi_label_classification")) {
                doc["labels"].push_back({{"label", cfg.labels[size_t(id)]}, {"id", id}, {"score", p}});
                if (!o.json) std::printf("  %-20s %.4f\n", cfg.labels[size_t(id)].c_str(), p);
            }
            break;
        }
        case TextHead::TokenClassification: {
            const std::string text = need_prompt();
            const Encoding e = runner.encode(text);
            const auto out = runner.run(to_batch({e}));
            const auto& logits = out.at("logits");
            const int64_t C = logits.shape[2];
            doc["words"] = Json::array();
            for (const auto& w : word_labels(logits.data.data(), C, e, text)) {
                const std::string& label = cfg.labels[size_t(w.label)];
                doc["words"].push_back({{"word", w.word}, {"label", label}, {"start", w.start_byte}, {"end", w.end_byte}});
                if (!o.json) std::printf("%-24s %s\n", w.word.c_str(), label.c_str());
            }
            break;
        }
        case TextHead::QuestionAnswering: {
            if (!o.has_question || o.question.find_first_not_of(" \t\r\n") == std::string::npos)
                throw Error("question answering needs a non-empty --question");
            if (!o.has_context || o.context.find_first_not_of(" \t\r\n") == std::string::npos)
                throw Error("question answering needs a non-empty --context");
            const std::string question = checked_text(o.question, "--question", o), context = checked_text(o.context, "--context", o);
            const Encoding e = runner.encode(question, &context, "only_second");
            const auto out = runner.run(to_batch({e}));
            const auto& start = out.at("start_logits").data;
            const auto& end = out.at("end_logits").data;
            const AnswerSpan span = best_answer_span(start.data(), end.data(), e, context, o.max_answer_length);
            const std::string& answer = span.text;
            doc["answer"] = answer;
            doc["start"] = span.start_byte;
            doc["end"] = span.end_byte;
            doc["score"] = span.score;
            if (!o.json) std::printf("answer: %s\n", answer.c_str());
            break;
        }
        case TextHead::MultipleChoice: {
            const std::string text = need_prompt();
            if (o.choices.size() < 2) throw cli::UsageError("multiple choice needs at least two --choice endings");
            std::vector<Encoding> encodings;
            for (const auto& c : o.choices) {
                const std::string choice = checked_text(c, "--choice text", o);
                encodings.push_back(runner.encode(text, &choice));
            }
            pad_to_longest(encodings, tok.pad_id());
            TextBatch batch = to_batch(encodings);
            batch.choices = int64_t(o.choices.size());
            const auto out = runner.run(batch);
            const auto& logits = out.at("logits");
            std::vector<float> p(logits.data.begin(), logits.data.end());
            d2v::softmax_inplace(p.data(), int64_t(p.size()));
            doc["choices"] = Json::array();
            for (size_t i = 0; i < p.size(); ++i) {
                doc["choices"].push_back({{"choice", o.choices[i]}, {"score", p[i]}});
                if (!o.json) std::printf("  %.4f  %s\n", p[i], o.choices[i].c_str());
            }
            doc["best"] = int64_t(std::max_element(p.begin(), p.end()) - p.begin());
            break;
        }
        case TextHead::CausalLM: {
            const std::string text = need_prompt();
            const std::vector<int64_t> prompt = pipe.generation_prompt(text);
            GenerationOptions g = o.gen;
            g.eos_token_id = cfg.eos_token_id;
            const auto ids = generate(pipe.model(), *pipe.language_model(), prompt, g);
            const std::vector<int64_t> fresh(ids.begin() + int64_t(prompt.size()), ids.end());
            doc["generated_ids"] = fresh;
            doc["text"] = tok.decode(ids, true);
            if (!o.json) std::printf("%s\n", doc["text"].get<std::string>().c_str());
            if (!o.dump_dir.empty()) {
                TextBatch full;
                full.input_ids = {ids};
                full.attention_mask = {std::vector<int64_t>(ids.size(), 1)};
                full.token_type_ids = {std::vector<int64_t>(ids.size(), 0)};
                runner.run(full);
            }
            break;
        }
        case TextHead::Base: {
            const std::string text = need_prompt();
            const std::string pair = checked_text(o.pair, "--pair text", o);
            const Encoding e = o.pair.empty() ? runner.encode(text) : runner.encode(text, &pair);
            const auto out = runner.run(to_batch({e}));
            std::vector<float> embedding;
            if (out.count("pooler_output")) {
                embedding = out.at("pooler_output").data;
                doc["pooling"] = "pooler_output";
            } else {
                const auto& h = out.at("last_hidden_state");
                const int64_t T = h.shape[1], H = h.shape[2];
                embedding.assign(size_t(H), 0.0f);
                for (int64_t t = 0; t < T; ++t) for (int64_t c = 0; c < H; ++c) embedding[size_t(c)] += h.data[size_t(t * H + c)] / float(T);
                doc["pooling"] = "mean of last_hidden_state (no pooler weights)";
            }
            doc["embedding"] = embedding;
            doc["tokens"] = e.input_ids.size();
            if (!o.json) {
                std::printf("embedding [%zu] (%s):", embedding.size(), doc["pooling"].get<std::string>().c_str());
                for (size_t i = 0; i < std::min<size_t>(8, embedding.size()); ++i) std::printf(" %.4f", embedding[i]);
                std::printf("%s\n", embedding.size() > 8 ? " ..." : "");
            }
            break;
        }
    }
    if (o.json) std::printf("%s\n", doc.dump(2).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-text", [&] { return run(parse(argc, argv)); });
}
