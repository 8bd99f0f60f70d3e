// is_video_path: only names, so the same answer with or without FFmpeg
// (compiled in both configurations, unlike src/video/).
#include <algorithm>
#include <cctype>
#include <string>

#include "visage/video.hpp"

namespace visage {

bool is_video_path(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of("/\\");
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return false;
  std::string extension = path.substr(dot + 1);
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* known : {"mp4", "mov", "mkv", "webm", "avi", "m4v", "ts", "mpg"}) {
    if (extension == known) return true;
  }
  return false;
}

}  // namespace visage
