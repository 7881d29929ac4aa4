// Text generation with a causal LM: greedy, or sampling with top-k / top-p (nucleus) and a seed.
// The prompt is fed once; every later step feeds one token through the key/value cache, so step t
// costs O(t) instead of re-running the whole sequence.
//
// Position ids: Transformers' generate() feeds this model position_ids = 0, 1, 2, ... (its generic
// cumsum-of-attention-mask rule), not the RoBERTa positions (padding_idx + 1, ...) a plain forward
// pass uses, so the two give different tokens. We follow generate() by default, so our output
// equals Transformers'; `model_positions` uses the model's own positions (= re-running the model
// on the growing sequence).
//
// One exception: position_embedding_type relative_key(_query). No absolute position is added, so
// both choices give the same tokens, and every cached step equals a full forward pass: our tokens
// equal Transformers 4.x's generate(use_cache=False). Its generate() with the cache (the default)
// differs: with use_cache its relative attention gives every query the position key_length - 1,
// right for one new token but wrong for the prompt, so the prompt's logits and every later step
// differ from a full pass (fixture causal_lm_relative_key: by up to 3.99 / 0.44; its 20 greedy
// tokens happen to agree there, but in general they need not). Transformers 5 has no relative_key:
// it drops distance_embedding on load and runs an absolute-position model (logits off by up to 12.9
// on that fixture), so nothing there to match.
#pragma once
#include <random>

#include "d2v/text/heads/language_model.h"

namespace d2v::text {

struct GenerationOptions {
    int64_t max_new_tokens = 20;
    bool sample = false;       // false: greedy (argmax)
    int64_t top_k = 0;         // 0: no top-k filter
    float top_p = 1.0f;        // 1: no nucleus filter
    float temperature = 1.0f;
    uint64_t seed = 0;
    int64_t eos_token_id = -1;  // stop after producing it; -1: never stop early
    bool model_positions = false;  // see above
};

inline int64_t pick_next_token(RowVector logits, const GenerationOptions& o, std::mt19937_64& rng) {
    const int64_t V = logits.size();
    if (!o.sample) {
        Eigen::Index best;
        logits.maxCoeff(&best);
        return int64_t(best);
    }
    if (!(o.temperature > 0)) throw Error("temperature must be positive");
    logits /= o.temperature;
    std::vector<int64_t> order(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) order[size_t(i)] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits(a) > logits(b); });
    int64_t keep = (o.top_k > 0) ? std::min(o.top_k, V) : V;
    std::vector<double> probs(static_cast<size_t>(keep));
    const double top = logits(order[0]);
    double total = 0;
    for (int64_t i = 0; i < keep; ++i) total += probs[size_t(i)] = std::exp(double(logits(order[size_t(i)])) - top);
    if (o.top_p < 1.0f) {  // smallest prefix whose probability reaches top_p (at least one token)
        double cumulative = 0;
        int64_t n = 0;
        while (n < keep && (n == 0 || cumulative < double(o.top_p) * total)) cumulative += probs[size_t(n++)];
        keep = n;
        probs.resize(size_t(keep));
    }
    std::discrete_distribution<int64_t> pick(probs.begin(), probs.end());
    return order[size_t(pick(rng))];
}

// Returns the prompt followed by the generated tokens (as Transformers' generate does).
inline std::vector<int64_t> generate(const TextModel& model, const LanguageModelHead& head, const std::vector<int64_t>& prompt,
                                     const GenerationOptions& o) {
    if (prompt.empty()) throw Error("generation needs at least one prompt token");
    const PassThreads pass_threads;
    std::mt19937_64 rng(o.seed);
    DecoderState state;
    std::vector<int64_t> tokens = prompt;
    Matrix hidden = model.forward_incremental(prompt, state, !o.model_positions);
    for (int64_t step = 0; step < o.max_new_tokens; ++step) {
        const Matrix logits = head.logits(hidden.bottomRows(1));
        const int64_t next = pick_next_token(logits.row(0), o, rng);
        tokens.push_back(next);
        if (next == o.eos_token_id) break;
        if (int64_t(tokens.size()) + model.config().pad_token_id + 1 > model.config().max_position_embeddings) break;
        hidden = model.forward_incremental({next}, state, !o.model_positions);
    }
    return tokens;
}

}  // namespace d2v::text
