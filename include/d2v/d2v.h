/* data2vec.cpp, the C API: every language with a C FFI can load a model file and run it.
 *
 * Basic usage:
 *
 *   d2v_model* model = NULL;
 *   if (d2v_model_load("models/digits-ctc.gguf", &model) != D2V_OK) {
 *       fprintf(stderr, "%s\n", d2v_last_error());
 *       return 1;
 *   }
 *   const char* files[] = {"samples/seven.wav"};
 *   d2v_audio_params params = d2v_audio_default_params();
 *   d2v_result* result = NULL;
 *   if (d2v_run_audio_files(model, files, 1, &params, &result) == D2V_OK) {
 *       d2v_item item;
 *       d2v_result_item(result, 0, &item);
 *       printf("%s\n", item.text);                    // "SEVEN"
 *       d2v_array logits;
 *       d2v_result_find_output(result, "logits", &logits);   // logits.shape[0..ndim), logits.data
 *       d2v_result_free(result);
 *   }
 *   d2v_model_free(model);
 *
 * Thread safety: the d2v_run_* calls may run concurrently on one d2v_model from many threads; a
 * d2v_result belongs to the thread that received it until it is freed.
 *
 * Every call that can fail returns a d2v_status; d2v_last_error() gives the message of the last
 * failure in the calling thread. No C++ exception crosses this interface. Outputs are named like
 * the Transformers fields ("logits", "last_hidden_state", "input_values", ...) and stay valid until
 * d2v_result_free(); so do all strings and arrays a result hands out.
 */
#ifndef D2V_H
#define D2V_H

#include <stddef.h>
#include <stdint.h>

#include "d2v/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum d2v_status {
    D2V_OK = 0,
    D2V_ERROR_ARGUMENT = 1,  /* NULL or inconsistent arguments, or a call for another modality */
    D2V_ERROR_INPUT = 2,     /* bad model file or input (missing, corrupt, wrong format, too short) */
    D2V_ERROR_MEMORY = 3,    /* out of memory */
    D2V_ERROR_INTERNAL = 4   /* anything else; d2v_last_error() says what */
} d2v_status;

typedef enum d2v_modality { D2V_AUDIO = 0, D2V_TEXT = 1, D2V_VISION = 2 } d2v_modality;

typedef struct d2v_model d2v_model;
typedef struct d2v_result d2v_result;

/* The message of the last failed call in this thread ("" if none). */
const char* d2v_last_error(void);
const char* d2v_version(void); /* D2V_VERSION_STRING of the library actually linked */
/* Threads for the matrix products and parallel loops, process-wide. */
d2v_status d2v_set_num_threads(int n);

/* Loads and validates a GGUF model file (any data2vec-audio/-text/-vision head). */
d2v_status d2v_model_load(const char* path, d2v_model** model);
void d2v_model_free(d2v_model* model); /* NULL is fine */

d2v_modality d2v_model_modality(const d2v_model* model);
const char* d2v_model_class(const d2v_model* model);    /* the head: "Data2VecAudioForCTC", ... */
int64_t d2v_model_sampling_rate(const d2v_model* model); /* audio models; 0 for the others */
size_t d2v_model_num_labels(const d2v_model* model);     /* id2label size (0: no classes) */
const char* d2v_model_label(const d2v_model* model, size_t id); /* NULL if out of range */

/* ---- parameters (start from the d2v_*_default_params() value) ---- */

typedef struct d2v_audio_params {
    int top_k;                /* classification labels per item (5) */
    int output_hidden_states; /* also report hidden_states.<i> (0) */
    int output_attentions;    /* also report attentions.<i> (0) */
    const char* words;        /* CTC: transcribe with only these words, separated by spaces (NULL: greedy) */
} d2v_audio_params;

typedef struct d2v_text_params {
    int top_k;                 /* labels / fill-mask tokens (5) */
    int truncate;              /* 1: cut an input longer than the model's maximum; 0: refuse it (1) */
    int64_t max_answer_length; /* question answering, tokens (30) */
    int64_t max_new_tokens;    /* causal LM generation (20) */
    int sample;                /* 0: greedy, as Transformers' generate() (0) */
    int64_t sample_top_k;      /* 0: off (0) */
    float top_p;               /* 1: off (1) */
    float temperature;         /* (1) */
    uint64_t seed;             /* (0) */
    int output_hidden_states;
    int output_attentions;
} d2v_text_params;

typedef struct d2v_vision_params {
    int top_k;
    int output_hidden_states;
    int output_attentions;
} d2v_vision_params;

d2v_audio_params d2v_audio_default_params(void);
d2v_text_params d2v_text_default_params(void);
d2v_vision_params d2v_vision_default_params(void);

/* One text input; the head decides which fields it needs (NULL = absent). */
typedef struct d2v_text_input {
    const char* text;            /* every head but question answering */
    const char* pair;            /* sequence classification / base model: optional second text */
    const char* question;        /* question answering */
    const char* context;         /* question answering */
    const char* const* choices;  /* multiple choice: the endings (at least two) */
    size_t num_choices;
} d2v_text_input;

/* ---- running (params may be NULL: the defaults) ---- */

/* waves[i]: lengths[i] mono float samples at d2v_model_sampling_rate(); padded into one batch. */
d2v_status d2v_run_audio(const d2v_model* model, const float* const* waves, const size_t* lengths, size_t count,
                         const d2v_audio_params* params, d2v_result** result);
/* WAV/FLAC/OGG files, mixed down to mono and resampled to the model's rate. */
d2v_status d2v_run_audio_files(const d2v_model* model, const char* const* paths, size_t count,
                               const d2v_audio_params* params, d2v_result** result);
d2v_status d2v_run_text(const d2v_model* model, const d2v_text_input* input, const d2v_text_params* params,
                        d2v_result** result);
/* PNG/JPEG/BMP/GIF files. */
d2v_status d2v_run_image_files(const d2v_model* model, const char* const* paths, size_t count,
                               const d2v_vision_params* params, d2v_result** result);
/* Decodes an image file to 8-bit RGB as the vision models expect it (PIL's convert("RGB")); free
 * *rgb with d2v_free(). */
d2v_status d2v_read_image(const char* path, uint8_t** rgb, int64_t* width, int64_t* height);
void d2v_free(void* p);
/* One 8-bit RGB image, row-major HWC: width * height * 3 bytes. */
d2v_status d2v_run_image_rgb(const d2v_model* model, const uint8_t* rgb, int64_t width, int64_t height,
                             const d2v_vision_params* params, d2v_result** result);

/* ---- results ---- */

typedef struct d2v_array {
    const char* name;     /* Transformers' field name */
    const float* data;    /* row-major; integer fields hold exact integers */
    const int64_t* shape;
    size_t ndim;
    size_t size;          /* number of values */
    int is_integer;       /* attention_mask, input_ids, ... */
} d2v_array;

typedef struct d2v_label {
    const char* label;  /* class name, token text, or choice */
    int64_t id;
    float score;        /* probability (regression: the value) */
} d2v_label;

/* A labelled piece of the input: a word (byte range of the text), an audio segment (frame range),
 * the answer of question answering (byte range of the context), a <mask> (token position). */
typedef struct d2v_span {
    int64_t start, end;
    const char* text;
    const d2v_label* labels; /* best first */
    size_t num_labels;
} d2v_span;

/* What the head means for one input; fields a head does not fill are empty (NULL / 0). */
typedef struct d2v_item {
    const char* text;           /* transcript, generated text, answer ("" if none) */
    const d2v_label* labels;    /* top-k classes; multiple choice: every choice */
    size_t num_labels;
    const d2v_span* spans;
    size_t num_spans;
    const int32_t* mask;        /* semantic segmentation: class per pixel, mask_height x mask_width */
    int64_t mask_width, mask_height;
    const int64_t* token_ids;   /* causal LM: generated tokens */
    size_t num_token_ids;
} d2v_item;

size_t d2v_result_num_outputs(const d2v_result* result);
d2v_status d2v_result_output(const d2v_result* result, size_t index, d2v_array* array);
d2v_status d2v_result_find_output(const d2v_result* result, const char* name, d2v_array* array);
size_t d2v_result_num_items(const d2v_result* result);
d2v_status d2v_result_item(const d2v_result* result, size_t index, d2v_item* item);
double d2v_result_seconds_per_frame(const d2v_result* result); /* audio: one output frame, in seconds */
size_t d2v_result_num_notes(const d2v_result* result);          /* resampling, truncation, UTF-8 repair */
const char* d2v_result_note(const d2v_result* result, size_t index);
void d2v_result_free(d2v_result* result); /* NULL is fine */

#ifdef __cplusplus
}
#endif

#endif /* D2V_H */
