/* The C API, compiled as C: every modality through d2v.h, compared with the Transformers outputs
 * stored with the fixtures (the same references the C++ parity tests use), plus its error paths and
 * one model shared by several threads.
 *
 * Tolerances (as tests/test_*_parity.cpp, same reasons): model outputs 1e-4 max abs diff (fp32 on
 * both sides, only the summation order differs; measured worst case ~1e-5), input_values and
 * pixel_values 1e-5 (float32 normalisation), token ids and transcripts exact.
 *
 * usage: d2v-test-c-api FIXTURES_DIR SOURCE_DIR
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "d2v/d2v.h"

static int failures = 0, checks = 0;
static const char* fixtures;
static const char* source_dir;

#define CHECK(cond, ...)                                      \
    do {                                                      \
        ++checks;                                             \
        if (!(cond)) {                                        \
            ++failures;                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                     \
            fprintf(stderr, "\n");                            \
        }                                                     \
    } while (0)

static char* read_file(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) n = 0;
    data[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return data;
}

/* A .npy array (little-endian <f4, <f8 or <i8, C order) as doubles. */
typedef struct npy {
    double* data;
    long shape[4];
    int ndim;
    size_t size;
} npy;

static npy load_npy(const char* dir, const char* name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    size_t n = 0;
    char* raw = read_file(path, &n);
    npy a = {0};
    if (!raw || n < 10 || memcmp(raw, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    const size_t header = 10 + (size_t)((unsigned char)raw[8] | ((unsigned char)raw[9] << 8));
    const char* shape = strstr(raw + 10, "'shape': (");
    const char* descr = strstr(raw + 10, "'descr': '");
    a.size = 1;
    for (const char* p = shape + 10; *p != ')';) {
        char* end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        a.shape[a.ndim++] = v;
        a.size *= (size_t)v;
        p = end;
        while (*p == ',' || *p == ' ') ++p;
    }
    a.data = malloc(a.size * sizeof(double) + 1);
    const char* body = raw + header;
    for (size_t i = 0; i < a.size; ++i) {
        if (strncmp(descr + 10, "<f4", 3) == 0) { float v; memcpy(&v, body + 4 * i, 4); a.data[i] = v; }
        else if (strncmp(descr + 10, "<f8", 3) == 0) { memcpy(&a.data[i], body + 8 * i, 8); }
        else { long long v; memcpy(&v, body + 8 * i, 8); a.data[i] = (double)v; }
    }
    free(raw);
    return a;
}

/* The index-th string of the JSON array under "key" (plain strings: no escapes in our fixtures
 * other than none; enough for texts.json, meta.json, transcripts.json). Caller frees. */
static char* json_string(const char* json, const char* key, int index) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char* p = strstr(json, pattern);
    if (!p) return NULL;
    p = strchr(p + strlen(pattern), '[');
    for (int i = 0; p && i <= index; ++i) {
        p = strchr(p + 1, '"');
        const char* end = p ? strchr(p + 1, '"') : NULL;
        if (!end) return NULL;
        if (i == index) {
            char* s = malloc((size_t)(end - p));
            memcpy(s, p + 1, (size_t)(end - p - 1));
            s[end - p - 1] = 0;
            return s;
        }
        p = end;
    }
    return NULL;
}

/* max |got - want| over `count` values of row `row` of the reference, starting at offset. */
static double max_diff(const float* got, const npy* want, size_t offset, size_t count) {
    double worst = 0;
    for (size_t i = 0; i < count; ++i) {
        const double d = fabs((double)got[i] - want->data[offset + i]);
        if (!(d <= worst)) worst = d;  /* NaN propagates as a failure */
    }
    return worst;
}

static d2v_model* load(const char* relative) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixtures, relative);
    d2v_model* model = NULL;
    const d2v_status s = d2v_model_load(path, &model);
    CHECK(s == D2V_OK && model, "load %s: %s", path, d2v_last_error());
    if (!model) exit(1);
    return model;
}

/* ---- audio: CTC on the jfk clip (raw samples in, logits + transcript out) ---- */

typedef struct audio_job {
    const d2v_model* model;
    const float* samples;
    size_t count;
    d2v_result* result;
    d2v_status status;
} audio_job;

static void* run_audio_job(void* arg) {
    audio_job* job = arg;
    const float* waves[1] = {job->samples};
    job->status = d2v_run_audio(job->model, waves, &job->count, 1, NULL, &job->result);
    return NULL;
}

static void test_audio(void) {
    d2v_model* model = load("audio/ctc/model.gguf");
    CHECK(d2v_model_modality(model) == D2V_AUDIO, "modality");
    CHECK(strcmp(d2v_model_class(model), "Data2VecAudioForCTC") == 0, "class %s", d2v_model_class(model));
    CHECK(d2v_model_sampling_rate(model) == 16000, "rate");

    char dir[1024];
    snprintf(dir, sizeof dir, "%s/audio/inputs/jfk", fixtures);
    npy raw = load_npy(dir, "raw");
    npy input_values = load_npy(dir, "input_values");
    snprintf(dir, sizeof dir, "%s/audio/ctc/jfk", fixtures);
    npy logits = load_npy(dir, "logits");
    char path[2048];
    snprintf(path, sizeof path, "%s/transcripts.json", dir);
    char* json = read_file(path, NULL);
    char* transcript = json_string(json, "batch_decode", 0);

    float* samples = malloc(raw.size * sizeof(float));
    for (size_t i = 0; i < raw.size; ++i) samples[i] = (float)raw.data[i];

    /* Four threads share the model; each result must equal the reference. */
    enum { kThreads = 4 };
    audio_job jobs[kThreads];
    pthread_t threads[kThreads];
    for (int t = 0; t < kThreads; ++t) {
        jobs[t] = (audio_job){model, samples, raw.size, NULL, D2V_ERROR_INTERNAL};
        pthread_create(&threads[t], NULL, run_audio_job, &jobs[t]);
    }
    for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
    for (int t = 0; t < kThreads; ++t) {
        CHECK(jobs[t].status == D2V_OK, "run_audio (thread %d): %s", t, d2v_last_error());
        if (jobs[t].status != D2V_OK) continue;
        d2v_array a;
        CHECK(d2v_result_find_output(jobs[t].result, "logits", &a) == D2V_OK, "no logits");
        CHECK(a.ndim == 3 && a.shape[0] == 1 && a.shape[1] == logits.shape[1] && a.shape[2] == logits.shape[2],
              "logits shape");
        if (a.size == logits.size) {
            const double d = max_diff(a.data, &logits, 0, a.size);
            CHECK(d <= 1e-4, "audio logits differ by %g", d);
        }
        CHECK(d2v_result_find_output(jobs[t].result, "input_values", &a) == D2V_OK && a.size == input_values.size,
              "input_values");
        if (a.size == input_values.size) CHECK(max_diff(a.data, &input_values, 0, a.size) <= 1e-5, "input_values differ");
        d2v_item item;
        CHECK(d2v_result_item(jobs[t].result, 0, &item) == D2V_OK, "item");
        CHECK(transcript && strcmp(item.text, transcript) == 0, "transcript differs");
        CHECK(d2v_result_seconds_per_frame(jobs[t].result) > 0.019 && d2v_result_seconds_per_frame(jobs[t].result) < 0.021,
              "seconds per frame %g", d2v_result_seconds_per_frame(jobs[t].result));
        d2v_result_free(jobs[t].result);
    }

    /* A word list: the plain words of the greedy transcript (special tokens such as </s> are not
       letters). Every word of the result must be one of them; a word the vocabulary cannot spell
       is an input error. */
    char* list = calloc(strlen(transcript ? transcript : "") + 2, 1);
    if (transcript) {
        char* copy = malloc(strlen(transcript) + 1);
        strcpy(copy, transcript);
        for (char* w = strtok(copy, " "); w; w = strtok(NULL, " "))
            if (!strchr(w, '<')) strcat(strcat(list, w), " ");
        free(copy);
    }
    CHECK(strlen(list) > 0, "the reference transcript has no plain word to list");
    if (strlen(list) > 0) {
        d2v_audio_params params = d2v_audio_default_params();
        CHECK(params.words == NULL, "default word list");
        params.words = list;
        const float* clip[1] = {samples};
        d2v_result* listed = NULL;
        CHECK(d2v_run_audio(model, clip, &raw.size, 1, &params, &listed) == D2V_OK, "run_audio with words: %s", d2v_last_error());
        d2v_item item;
        if (listed && d2v_result_item(listed, 0, &item) == D2V_OK) {
            CHECK(strlen(item.text) > 0, "empty transcript with a word list");
            char* copy = malloc(strlen(item.text) + 1);
            strcpy(copy, item.text);
            for (char* w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
                const size_t n = strlen(w);
                int found = 0;
                for (const char* at = strstr(list, w); at && !found; at = strstr(at + 1, w))
                    found = (at == list || at[-1] == ' ') && at[n] == ' ';
                CHECK(found, "word '%s' is not in the list", w);
            }
            free(copy);
        }
        d2v_result_free(listed);
        params.words = "\xe2\x98\x83"; /* a snowman: in no CTC vocabulary here */
        CHECK(d2v_run_audio(model, clip, &raw.size, 1, &params, &listed) == D2V_ERROR_INPUT, "unspellable word accepted");
    }
    free(list);

    /* Errors: a missing file, a clip shorter than the conv stack's receptive field, a text call. */
    d2v_result* r = (d2v_result*)1;
    const char* missing[] = {"/nonexistent/a.wav"};
    CHECK(d2v_run_audio_files(model, missing, 1, NULL, &r) == D2V_ERROR_INPUT && r == NULL, "missing file accepted");
    CHECK(strstr(d2v_last_error(), "/nonexistent/a.wav") != NULL, "message: %s", d2v_last_error());
    const float* waves[1] = {samples};
    size_t tiny = 10;
    CHECK(d2v_run_audio(model, waves, &tiny, 1, NULL, &r) == D2V_ERROR_INPUT, "10 samples accepted");
    CHECK(strstr(d2v_last_error(), "needs at least") != NULL, "message: %s", d2v_last_error());
    d2v_text_input in = {"hello", NULL, NULL, NULL, NULL, 0};
    CHECK(d2v_run_text(model, &in, NULL, &r) == D2V_ERROR_ARGUMENT, "text call on an audio model accepted");
    CHECK(d2v_run_audio(model, NULL, NULL, 1, NULL, &r) == D2V_ERROR_ARGUMENT, "NULL waves accepted");
    CHECK(d2v_run_audio(NULL, waves, &tiny, 1, NULL, &r) == D2V_ERROR_ARGUMENT, "NULL model accepted");

    free(samples);
    free(transcript);
    free(json);
    free(raw.data);
    free(input_values.data);
    free(logits.data);
    d2v_model_free(model);
}

/* ---- text: fill-mask on two sentences, one at a time ---- */

static void test_text(void) {
    d2v_model* model = load("text/masked_lm/model.gguf");
    CHECK(d2v_model_modality(model) == D2V_TEXT, "modality");
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/text/inputs/masked", fixtures);
    npy ids = load_npy(dir, "input_ids");
    npy mask = load_npy(dir, "attention_mask");
    snprintf(path, sizeof path, "%s/texts.json", dir);
    char* json = read_file(path, NULL);
    snprintf(dir, sizeof dir, "%s/text/masked_lm/masked", fixtures);
    npy logits = load_npy(dir, "logits");
    const long T = ids.shape[1], V = logits.shape[2];
    for (int b = 0; b < 2; ++b) {
        char* text = json_string(json, "texts", b);
        d2v_text_input in = {text, NULL, NULL, NULL, NULL, 0};
        d2v_text_params params = d2v_text_default_params();
        params.top_k = 3;
        d2v_result* r = NULL;
        CHECK(d2v_run_text(model, &in, &params, &r) == D2V_OK, "run_text: %s", d2v_last_error());
        free(text);
        if (!r) continue;
        d2v_array got_ids, got_logits;
        CHECK(d2v_result_find_output(r, "input_ids", &got_ids) == D2V_OK, "input_ids");
        CHECK(d2v_result_find_output(r, "logits", &got_logits) == D2V_OK, "logits");
        long valid = 0;
        for (long t = 0; t < T; ++t) valid += mask.data[b * T + t] != 0;
        CHECK(got_ids.ndim == 2 && got_ids.shape[1] == valid, "item %d: %ld tokens, expected %ld", b, (long)got_ids.shape[1], valid);
        if (got_ids.shape[1] != valid) { d2v_result_free(r); continue; }
        for (long t = 0; t < valid; ++t) CHECK(got_ids.data[t] == ids.data[b * T + t], "item %d token %ld differs", b, t);
        const double d = max_diff(got_logits.data, &logits, (size_t)(b * T * V), (size_t)(valid * V));
        CHECK(d <= 1e-4, "text logits (item %d) differ by %g", b, d);
        d2v_item item;
        d2v_result_item(r, 0, &item);
        CHECK(item.num_spans == 2, "item %d: %zu masks", b, item.num_spans);
        for (size_t s = 0; s < item.num_spans; ++s) {
            CHECK(item.spans[s].num_labels == 3, "top-k");
            CHECK(item.spans[s].labels[0].score >= item.spans[s].labels[1].score, "ranked");
            CHECK(ids.data[b * T + item.spans[s].start] == 4, "mask position");  /* <mask> is id 4 */
        }
        d2v_result_free(r);
    }
    /* invalid UTF-8 is replaced and reported, never a crash */
    d2v_text_input bad = {"caf\xc3 <mask>", NULL, NULL, NULL, NULL, 0};
    d2v_result* r = NULL;
    CHECK(d2v_run_text(model, &bad, NULL, &r) == D2V_OK && d2v_result_num_notes(r) == 1, "invalid UTF-8");
    d2v_result_free(r);
    d2v_text_input empty = {"   ", NULL, NULL, NULL, NULL, 0};
    CHECK(d2v_run_text(model, &empty, NULL, &r) == D2V_ERROR_INPUT, "empty text accepted");
    free(json);
    free(ids.data);
    free(mask.data);
    free(logits.data);
    d2v_model_free(model);
}

/* ---- vision: classification from files and from an RGB buffer ---- */

static void test_vision(void) {
    d2v_model* model = load("vision/models/image_classification/model.gguf");
    CHECK(d2v_model_modality(model) == D2V_VISION, "modality");
    CHECK(d2v_model_num_labels(model) == 5 && d2v_model_label(model, 0) && !d2v_model_label(model, 5), "labels");
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/vision/models/inputs/pair_32x32", fixtures);
    npy pixels = load_npy(dir, "pixel_values");
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char* json = read_file(path, NULL);
    snprintf(dir, sizeof dir, "%s/vision/models/image_classification/pair_32x32", fixtures);
    npy logits = load_npy(dir, "logits");
    char files[2][1024];
    const char* paths[2] = {files[0], files[1]};
    for (int i = 0; i < 2; ++i) {
        char* f = json_string(json, "files", i);
        snprintf(files[i], sizeof files[i], "%s/%s", source_dir, f ? f : "?");
        free(f);
    }
    d2v_vision_params params = d2v_vision_default_params();
    params.top_k = 2;
    d2v_result* r = NULL;
    CHECK(d2v_run_image_files(model, paths, 2, &params, &r) == D2V_OK, "run_image_files: %s", d2v_last_error());
    if (r) {
        d2v_array a;
        CHECK(d2v_result_find_output(r, "logits", &a) == D2V_OK && a.size == logits.size, "logits");
        if (a.size == logits.size) CHECK(max_diff(a.data, &logits, 0, a.size) <= 1e-4, "vision logits differ");
        CHECK(d2v_result_find_output(r, "pixel_values", &a) == D2V_OK && a.size == pixels.size, "pixel_values");
        if (a.size == pixels.size) CHECK(max_diff(a.data, &pixels, 0, a.size) <= 1e-5, "pixel_values differ");
        d2v_item item;
        CHECK(d2v_result_num_items(r) == 2 && d2v_result_item(r, 1, &item) == D2V_OK && item.num_labels == 2, "items");
        d2v_result_free(r);
    }
    /* the same first image as a decoded RGB buffer */
    uint8_t* rgb = NULL;
    int64_t w = 0, h = 0;
    CHECK(d2v_read_image(paths[0], &rgb, &w, &h) == D2V_OK && rgb && w > 0 && h > 0, "read_image: %s", d2v_last_error());
    r = NULL;
    CHECK(d2v_run_image_rgb(model, rgb, w, h, NULL, &r) == D2V_OK, "run_image_rgb: %s", d2v_last_error());
    if (r) {
        d2v_array a;
        d2v_result_find_output(r, "logits", &a);
        CHECK(a.size == (size_t)logits.shape[1] && max_diff(a.data, &logits, 0, a.size) <= 1e-4, "rgb logits differ");
        d2v_result_free(r);
    }
    d2v_free(rgb);
    CHECK(d2v_run_image_rgb(model, (const uint8_t*)"abc", 0, 1, NULL, &r) == D2V_ERROR_ARGUMENT, "0 x 1 image accepted");
    snprintf(path, sizeof path, "%s/vision/images/bad/corrupt.jpg", fixtures);
    const char* bad[] = {path};
    CHECK(d2v_run_image_files(model, bad, 1, NULL, &r) == D2V_ERROR_INPUT, "a corrupt JPEG accepted");
    free(json);
    free(pixels.data);
    free(logits.data);
    d2v_model_free(model);
}

static void test_loading(void) {
    d2v_model* model = (d2v_model*)1;
    CHECK(d2v_model_load("/nonexistent.gguf", &model) == D2V_ERROR_INPUT && model == NULL, "missing model");
    CHECK(strlen(d2v_last_error()) > 0, "no message");
    char path[1024];
    snprintf(path, sizeof path, "%s/audio/inputs/jfk/raw.npy", fixtures);  /* not a GGUF file */
    CHECK(d2v_model_load(path, &model) == D2V_ERROR_INPUT, "npy loaded as a model");
    CHECK(d2v_model_load(NULL, &model) == D2V_ERROR_ARGUMENT, "NULL path");
    CHECK(d2v_set_num_threads(0) == D2V_ERROR_ARGUMENT, "0 threads");
    CHECK(d2v_set_num_threads(2) == D2V_OK, "2 threads");
    CHECK(strcmp(d2v_version(), D2V_VERSION_STRING) == 0, "version %s", d2v_version());
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FIXTURES_DIR SOURCE_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    source_dir = argv[2];
    test_loading();
    test_audio();
    test_text();
    test_vision();
    printf("C API: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
