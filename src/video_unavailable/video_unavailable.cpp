// The video API in a build without FFmpeg (VISAGE_VIDEO=OFF): every entry point
// says so with Error{unsupported}, so programs link and fail clearly at run time.
#include "visage/video.hpp"

namespace visage {
namespace {

[[noreturn]] void unavailable() { throw Error(ErrorKind::unsupported, "built without FFmpeg (VISAGE_VIDEO=OFF)"); }

}  // namespace

struct VideoReader::Impl {};
struct VideoWriter::Impl {};

VideoReader::VideoReader(const std::string&, const VideoReaderOptions&) { unavailable(); }
VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;
const VideoInfo& VideoReader::info() const { unavailable(); }
std::optional<VideoFrame> VideoReader::read() { unavailable(); }

VideoWriter::VideoWriter(const std::string&, const VideoInfo&, const VideoWriterOptions&) { unavailable(); }
VideoWriter::~VideoWriter() = default;
VideoWriter::VideoWriter(VideoWriter&&) noexcept = default;
VideoWriter& VideoWriter::operator=(VideoWriter&&) noexcept = default;
void VideoWriter::write(const VideoFrame&) { unavailable(); }
void VideoWriter::finish() { unavailable(); }
const std::string& VideoWriter::encoder_name() const { unavailable(); }
int64_t VideoWriter::frames_written() const { unavailable(); }

VideoInfo probe_video(const std::string&, const VideoReaderOptions&) { unavailable(); }

bool has_video_encoder(const std::string&) { return false; }
bool has_video_decoder(const std::string&) { return false; }

}  // namespace visage
