// The text front end: word + position + token-type embeddings, then LayerNorm.
// Position ids count from padding_idx + 1 over non-pad tokens (fairseq's make_positions); pad
// tokens get padding_idx itself. With "relative_key(_query)" the absolute position embeddings exist
// in the checkpoint but are not added (Transformers 4.x semantics).
#pragma once
#include "d2v/text/tensor_names.h"

namespace d2v::text {

class TextEmbeddings {
public:
    TextEmbeddings(const ModelFile& file, const TextConfig& c)
        : config_(c),
          words_(file.tensor(names::kWordEmbeddings)),
          positions_(file.tensor(names::kPositionEmbeddings)),
          token_types_(file.tensor(names::kTokenTypeEmbeddings)),
          norm_w_(file.tensor(names::kEmbeddingNormWeight)),
          norm_b_(file.tensor(names::kEmbeddingNormBias)) {}

    // Position ids of `ids` that follow `past` earlier non-pad tokens.
    std::vector<int64_t> position_ids(const std::vector<int64_t>& ids, int64_t past = 0) const {
        std::vector<int64_t> pos(ids.size());
        int64_t count = past;
        for (size_t i = 0; i < ids.size(); ++i) {
            const bool real = ids[i] != config_.pad_token_id;
            count += real ? 1 : 0;
            pos[i] = real ? count + config_.pad_token_id : config_.pad_token_id;
        }
        return pos;
    }

    Matrix forward(const std::vector<int64_t>& ids, const std::vector<int64_t>& token_types,
                   const std::vector<int64_t>& positions) const {
        const int64_t H = config_.hidden_size, T = int64_t(ids.size());
        Matrix x(T, H);
        const bool absolute = config_.position_embedding == RelativeKeyEmbedding::Mode::None;
        for (int64_t t = 0; t < T; ++t) {
            const int64_t id = ids[size_t(t)], type = token_types.empty() ? 0 : token_types[size_t(t)], pos = positions[size_t(t)];
            if (id < 0 || id >= config_.vocab_size) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
            if (type < 0 || type >= config_.type_vocab_size) throw Error("token type id " + std::to_string(type) + " is outside type_vocab_size");
            if (absolute && (pos < 0 || pos >= config_.max_position_embeddings))
                throw Error("sequence too long: position " + std::to_string(pos) + " >= max_position_embeddings " +
                            std::to_string(config_.max_position_embeddings));
            x.row(t) = ConstRowVectorMap(words_ + id * H, H) + ConstRowVectorMap(token_types_ + type * H, H);
            if (absolute) x.row(t) += ConstRowVectorMap(positions_ + pos * H, H);
        }
        layer_norm_rows(x, norm_w_, norm_b_, config_.layer_norm_eps);
        return x;
    }

private:
    TextConfig config_;
    const float *words_, *positions_, *token_types_, *norm_w_, *norm_b_;
};

}  // namespace d2v::text
