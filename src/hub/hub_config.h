// Settings of the model hub client, read from the environment the way huggingface_hub reads it
// (huggingface_hub constants.py): HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE. The token is
// held here and sent only to the endpoint; it is never logged or put into an error message.
#pragma once
#include <filesystem>
#include <string>

namespace a2f::hub {

struct RetryPolicy {
  int max_attempts = 6;       // consecutive attempts without progress before giving up
  double base_delay_s = 1.0;  // first wait; doubles each attempt
  double max_delay_s = 30.0;  // cap of one wait (also caps Retry-After)
};

struct HubConfig {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT, no trailing '/'
  std::string token;                                // HF_TOKEN / HUGGING_FACE_HUB_TOKEN / token file
  std::filesystem::path hf_home;                    // HF_HOME (default ~/.cache/huggingface)
  std::filesystem::path hub_cache;                  // HF_HUB_CACHE (default $HF_HOME/hub)
  std::filesystem::path arc2face_cache;             // ARC2FACE_CACHE (default ~/.cache/arc2face)
  bool offline = false;                             // HF_HUB_OFFLINE: never touch the network
  // insightface's release of the antelopev2 pack (ARC2FACE_ANTELOPEV2_URL overrides it, e.g. for a mirror).
  std::string antelopev2_url =
      "https://github.com/deepinsight/insightface/releases/download/v0.7/antelopev2.zip";
  // sha256 the face detector must have, from the manifest (insightface's published checksum); tests put the
  // checksum of their own stand-in file here. Not settable from the environment.
  std::string detector_sha256;
  RetryPolicy retry;
  long connect_timeout_s = 15;
  long stall_timeout_s = 60;  // a transfer slower than 1 byte/s for this long is dropped (and retried)
};

// Reads the environment. Precedence follows huggingface_hub: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE >
// $HF_HOME/hub; HF_HOME > $XDG_CACHE_HOME/huggingface > ~/.cache/huggingface; HF_TOKEN >
// HUGGING_FACE_HUB_TOKEN > file $HF_TOKEN_PATH > file $HF_HOME/token.
HubConfig hub_config_from_env();

// "1", "ON", "YES", "TRUE" (any case) -> true, as huggingface_hub's _is_true.
bool env_flag_is_true(const char* value);

// $XDG_CACHE_HOME or ~/.cache (or ./.cache when HOME is unset).
std::filesystem::path user_cache_dir();

}  // namespace a2f::hub
