// Loading a data2vec-text model file (weights + packed tokenizer) and running the head it holds.
//
//   d2v::text::TextPipeline pipe("model.gguf");
//   auto batch = pipe.encode({"Hello <mask>!"});
//   d2v::NamedOutputs out = pipe.run(batch);          // out["logits"], ...
#pragma once
#include <cstdio>
#include <optional>

#include "d2v/text/heads/classification.h"
#include "d2v/text/heads/language_model.h"
#include "d2v/text/tokenizer.h"

namespace d2v::text {

class TextPipeline {
public:
    explicit TextPipeline(const std::string& path, const std::string& program = "this program")
        : file_(std::make_shared<const ModelFile>(path)) {
        file_->require_architecture("data2vec-text", program);
        head_kind_ = parse_text_head(file_->model_class());
        config_ = parse_text_config(file_->config());
        const bool has_pooler = file_->has_tensor(names::kPoolerWeight);
        if (head_kind_ == TextHead::MultipleChoice && !has_pooler)
            throw Error(path + ": Data2VecTextForMultipleChoice needs pooler weights (data2vec_text.pooler.*), which this "
                               "checkpoint lacks; Transformers would fill them randomly, we refuse instead");
        if (head_kind_ == TextHead::Base && !has_pooler)
            std::fprintf(stderr, "%s: warning: checkpoint has no pooler weights; pooler_output is omitted\n", program.c_str());
        file_->validate(text_tensor_table(config_, head_kind_, has_pooler, file_->has_tensor(names::kLmDecoderWeight)));
        // Only the base model and multiple choice use the pooler (as in Transformers).
        const bool use_pooler = has_pooler && (head_kind_ == TextHead::Base || head_kind_ == TextHead::MultipleChoice);
        model_ = std::make_unique<TextModel>(file_, config_, use_pooler);
        switch (head_kind_) {
            case TextHead::Base: break;
            case TextHead::MaskedLM:
            case TextHead::CausalLM: {
                auto lm = std::make_unique<LanguageModelHead>(*file_, config_, head_kind_ == TextHead::CausalLM);
                lm_ = lm.get();
                head_ = std::move(lm);
                break;
            }
            case TextHead::SequenceClassification: head_ = std::make_unique<SequenceClassificationHead>(*file_, config_); break;
            case TextHead::MultipleChoice: head_ = std::make_unique<MultipleChoiceHead>(*file_, config_); break;
            case TextHead::TokenClassification: head_ = std::make_unique<TokenClassificationHead>(*file_, config_); break;
            case TextHead::QuestionAnswering: head_ = std::make_unique<QuestionAnsweringHead>(*file_, config_); break;
        }
        tokenizer_ = packed_tokenizer(*file_);
    }

    const ModelFile& file() const { return *file_; }
    const TextConfig& config() const { return config_; }
    TextHead head() const { return head_kind_; }
    const TextModel& model() const { return *model_; }
    const LanguageModelHead* language_model() const { return lm_; }
    const BpeTokenizer& tokenizer() const {
        if (!tokenizer_)
            throw Error(file_->path() + ": model file has no tokenizer (the checkpoint had neither vocab.json + merges.txt "
                                        "nor tokenizer.json)");
        return *tokenizer_;
    }
    // Longest input the position embeddings allow (positions start after padding_idx).
    int64_t max_length() const { return config_.max_position_embeddings - config_.pad_token_id - 1; }
    // A causal-LM prompt as Transformers' generate() receives it: <s> then the text's tokens, no </s>.
    std::vector<int64_t> generation_prompt(const std::string& text) const {
        EncodeOptions plain;
        plain.add_special_tokens = false;
        std::vector<int64_t> prompt{tokenizer().bos_id()};
        for (int64_t id : tokenizer().encode(text, plain).input_ids) prompt.push_back(id);
        if (int64_t(prompt.size()) > max_length()) throw Error("prompt is longer than the model's maximum length");
        return prompt;
    }

    NamedOutputs run(const TextBatch& batch, const TextRunOptions& options = {}, const NamedOutputs* labels = nullptr) const {
        const PassThreads pass_threads;
        TextModelOutput base = model_->forward(batch, options);
        NamedOutputs out;
        if (head_kind_ == TextHead::Base) {
            out["last_hidden_state"] = stack_items(base.last_hidden_state);
            if (base.pooler_output) out["pooler_output"] = matrix_array(*base.pooler_output);
        } else {
            head_->apply(batch, base, labels, out);
        }
        if (options.hidden_states || options.attentions)
            add_layer_outputs(out, options.hidden_states ? base.hidden_states : decltype(base.hidden_states){}, base.attentions,
                              config_.num_attention_heads);
        return out;
    }

private:
    // The tokenizer the converter packed: vocab.json + merges.txt and/or tokenizer.json (all that
    // Transformers 5 saves), with tokenizer_config.json; none if the checkpoint had neither.
    static std::optional<BpeTokenizer> packed_tokenizer(const ModelFile& file) {
        const std::string tokenizer_text = file.metadata_string("d2v.tokenizer_json");
        if (!file.vocab().is_object() && tokenizer_text.empty()) return std::nullopt;
        Json tokenizer_json;
        try {
            if (!tokenizer_text.empty()) tokenizer_json = Json::parse(tokenizer_text);
        } catch (const Json::exception& e) {
            throw Error(file.path() + ": metadata 'd2v.tokenizer_json' is not valid JSON: " + e.what());
        }
        try {
            return BpeTokenizer(file.vocab(), file.metadata_string("d2v.merges_txt"), tokenizer_json, file.tokenizer_config());
        } catch (const Error& e) {
            throw Error(file.path() + ": " + e.what());
        }
    }

    std::shared_ptr<const ModelFile> file_;
    TextHead head_kind_ = TextHead::Base;
    TextConfig config_;
    std::unique_ptr<TextModel> model_;
    std::unique_ptr<TextHeadModule> head_;
    const LanguageModelHead* lm_ = nullptr;
    std::optional<BpeTokenizer> tokenizer_;
};

// Encodings (already padded to one length) -> model batch.
inline TextBatch to_batch(const std::vector<Encoding>& encodings) {
    TextBatch batch;
    for (const auto& e : encodings) {
        batch.input_ids.push_back(e.input_ids);
        batch.attention_mask.push_back(e.attention_mask);
        batch.token_type_ids.push_back(e.token_type_ids);
    }
    return batch;
}

}  // namespace d2v::text
