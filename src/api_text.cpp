// The facade's text side: tokenise the input the way the head needs it, run TextPipeline, and say
// what the logits mean (top-k labels, words, answer span, fill-mask tokens, generated text).
#include <cmath>

#include "api_internal.h"
#include "d2v/text/generation.h"
#include "d2v/text/pipeline.h"
#include "d2v/text/postprocess.h"

namespace d2v::api {

using namespace d2v::text;

void load_text(const std::string& path, Model::Impl& impl) {
    auto pipe = std::make_shared<const TextPipeline>(path, "d2v");
    impl.modality = Modality::Text;
    impl.model_class = pipe->file().model_class();
    impl.labels = pipe->config().labels;
    impl.text = std::move(pipe);
}

namespace {

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

class TextRun {
public:
    TextRun(const TextPipeline& pipe, const TextOptions& options, Result& result)
        : pipe_(pipe), options_(options), result_(result) {
        encode_.max_length = pipe.max_length();
        encode_.truncation = options.truncate ? "longest_first" : "none";
    }

    Encoding encode(const std::string& a, const std::string* b = nullptr, const char* strategy = nullptr) {
        EncodeOptions e = encode_;
        if (strategy && options_.truncate) e.truncation = strategy;
        Encoding out;
        try {
            out = b ? pipe_.tokenizer().encode_pair(a, *b, e) : pipe_.tokenizer().encode(a, e);
        } catch (const Error& err) {
            throw Error(std::string(err.what()) + " (the model takes at most " + std::to_string(encode_.max_length) + " tokens)");
        }
        if (out.truncated) result_.notes.push_back("input truncated to " + std::to_string(encode_.max_length) + " tokens (the model's maximum)");
        return out;
    }

    // Runs the model; the result's outputs also get the inputs (as the CLI's --dump writes them).
    const NamedOutputs& run(const TextBatch& batch) {
        out_ = pipe_.run(batch, {options_.hidden_states, options_.attentions});
        result_.outputs = to_outputs(out_);
        auto as_array = [](const std::vector<std::vector<int64_t>>& rows) {
            Array a{{int64_t(rows.size()), rows.empty() ? 0 : int64_t(rows[0].size())}, {}, true};
            for (const auto& row : rows)
                for (int64_t v : row) a.data.push_back(float(v));
            return a;
        };
        result_.outputs["input_ids"] = as_array(batch.input_ids);
        result_.outputs["attention_mask"] = as_array(batch.attention_mask);
        result_.outputs["token_type_ids"] = as_array(batch.token_type_ids);
        return out_;
    }

private:
    const TextPipeline& pipe_;
    const TextOptions& options_;
    Result& result_;
    EncodeOptions encode_;
    NamedOutputs out_;
};

}  // namespace

Result run_text(const Model::Impl& impl, const TextInput& raw, const TextOptions& options) {
    const TextPipeline& pipe = *impl.text;
    const auto& cfg = pipe.config();
    const BpeTokenizer& tok = pipe.tokenizer();
    Result result;
    result.items.resize(1);
    Item& item = result.items[0];
    TextRun runner(pipe, options, result);
    // Invalid UTF-8 is replaced by U+FFFD (Python's errors="replace"), and said so.
    auto clean = [&](const std::string& text, const char* what) {
        bool invalid = false;
        std::string s = sanitize_utf8(text, &invalid);
        if (invalid) result.notes.push_back(std::string(what) + " is not valid UTF-8; invalid bytes replaced with U+FFFD");
        return s;
    };
    auto need_text = [&]() {
        if (blank(raw.text)) throw Error("input text is empty");
        return clean(raw.text, "input text");
    };

    switch (pipe.head()) {
        case TextHead::MaskedLM: {
            const std::string text = need_text();
            const Encoding e = runner.encode(text);
            const auto& logits = runner.run(to_batch({e})).at("logits");
            const int64_t V = logits.shape[2];
            for (size_t m = 0; m < e.input_ids.size(); ++m) {
                if (e.input_ids[m] != tok.mask_id()) continue;
                Span span{int64_t(m), int64_t(m) + 1, "<mask>", {}};
                for (Label l : top_labels(softmax(logits.data.data() + m * size_t(V), V), options.top_k, {})) {
                    l.label = tok.decode({l.id}, false);
                    span.labels.push_back(l);
                }
                item.spans.push_back(std::move(span));
            }
            if (item.spans.empty()) throw Error("fill-mask needs at least one <mask> token in the input text");
            break;
        }
        case TextHead::SequenceClassification:
        case TextHead::Base: {
            const std::string text = need_text(), pair = clean(raw.pair, "pair text");
            const Encoding e = raw.pair.empty() ? runner.encode(text) : runner.encode(text, &pair);
            const auto& out = runner.run(to_batch({e}));
            if (pipe.head() == TextHead::Base) break;  // last_hidden_state / pooler_output are the result
            const auto& logits = out.at("logits");
            const int64_t C = logits.shape[1];
            const std::string kind = cfg.problem_type.empty() ? (C == 1 ? "regression" : "single_label_classification") : cfg.problem_type;
            if (kind == "regression") {
                item.labels.push_back({"score", 0, logits.data[0]});
            } else if (kind == "multi_label_classification") {
                std::vector<float> p(logits.data.begin(), logits.data.begin() + C);
                for (auto& s : p) s = 1.0f / (1.0f + std::exp(-s));
                item.labels = top_labels(p, options.top_k, cfg.labels);
            } else {
                item.labels = top_labels(softmax(logits.data.data(), C), options.top_k, cfg.labels);
            }
            break;
        }
        case TextHead::TokenClassification: {
            const std::string text = need_text();
            const Encoding e = runner.encode(text);
            const auto& logits = runner.run(to_batch({e})).at("logits");
            const int64_t C = logits.shape[2];
            for (const auto& w : word_labels(logits.data.data(), C, e, text)) {
                // the word's score: the probability of its label at its first token (the one that decides it)
                size_t first = 0;
                while (first < e.offsets.size() && !(e.sequence_ids[first] == 0 && e.offsets[first].first == w.start_byte)) ++first;
                const float p = first < e.offsets.size() ? softmax(logits.data.data() + first * size_t(C), C)[size_t(w.label)] : 0.0f;
                item.spans.push_back({w.start_byte, w.end_byte, w.word, {{cfg.labels[size_t(w.label)], w.label, p}}});
            }
            break;
        }
        case TextHead::QuestionAnswering: {
            if (blank(raw.question)) throw Error("question answering needs a non-empty question");
            if (blank(raw.context)) throw Error("question answering needs a non-empty context");
            const std::string question = clean(raw.question, "question"), context = clean(raw.context, "context");
            const Encoding e = runner.encode(question, &context, "only_second");
            const auto& out = runner.run(to_batch({e}));
            const AnswerSpan span = best_answer_span(out.at("start_logits").data.data(), out.at("end_logits").data.data(), e,
                                                     context, options.max_answer_length);
            item.text = span.text;
            item.spans.push_back({span.start_byte, span.end_byte, span.text, {{"answer", -1, float(span.score)}}});
            break;
        }
        case TextHead::MultipleChoice: {
            const std::string text = need_text();
            if (raw.choices.size() < 2) throw Error("multiple choice needs at least two choices");
            std::vector<Encoding> encodings;
            for (const auto& c : raw.choices) {
                const std::string choice = clean(c, "choice text");
                encodings.push_back(runner.encode(text, &choice));
            }
            pad_to_longest(encodings, tok.pad_id());
            TextBatch batch = to_batch(encodings);
            batch.choices = int64_t(raw.choices.size());
            const auto& logits = runner.run(batch).at("logits");
            const auto p = softmax(logits.data.data(), int64_t(logits.data.size()));
            for (size_t i = 0; i < p.size(); ++i) item.labels.push_back({raw.choices[i], int64_t(i), p[i]});
            break;
        }
        case TextHead::CausalLM: {
            const std::string text = need_text();
            const std::vector<int64_t> prompt = pipe.generation_prompt(text);
            GenerationOptions g;
            g.max_new_tokens = options.max_new_tokens;
            g.sample = options.sample;
            g.top_k = options.sample_top_k;
            g.top_p = options.top_p;
            g.temperature = options.temperature;
            g.seed = options.seed;
            g.eos_token_id = cfg.eos_token_id;
            const auto ids = generate(pipe.model(), *pipe.language_model(), prompt, g);
            item.token_ids.assign(ids.begin() + int64_t(prompt.size()), ids.end());
            item.text = tok.decode(ids, true);
            // The outputs of one forward pass over prompt + generated tokens (what --dump writes).
            TextBatch full;
            full.input_ids = {ids};
            full.attention_mask = {std::vector<int64_t>(ids.size(), 1)};
            full.token_type_ids = {std::vector<int64_t>(ids.size(), 0)};
            runner.run(full);
            break;
        }
    }
    return result;
}

}  // namespace d2v::api
