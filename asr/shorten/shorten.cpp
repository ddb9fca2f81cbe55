// Shorten decoder (the compiled path of asr.shorten; asr/shorten/reference.py is the plain
// Python reference it is tested against, asr/shorten/format.py documents the stream).
//
// Rice codes are read from a 64-bit cache with count-leading-zeros, so a sample costs a few
// instructions: a pure-Python bit reader is ~100x slower than real-time corpus loading needs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

constexpr int kMaxVersion = 3, kMaxChannels = 8, kMaxBlocksize = 65535, kDefaultBlocksize = 256;
constexpr int kUlongSize = 2, kFnSize = 2, kTypeSize = 4, kChanSize = 0, kLpcqSize = 2;
constexpr int kEnergySize = 3, kBitshiftSize = 2, kNskipSize = 1, kXbyteSize = 7;
constexpr int kVerbatimCkSize = 5, kVerbatimByteSize = 8, kLpcQuant = 5, kNwrap = 3;
enum Fn { DIFF0, DIFF1, DIFF2, DIFF3, QUIT, BLOCKSIZE, BITSHIFT, QLPC, ZERO, VERBATIM };

struct Corrupt : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

int type_mean(int type) {
  switch (type) {
    case 1: case 3: case 5: return 0;     // signed 8 / 16 bit
    case 2: return 0x80;                  // unsigned 8 bit
    case 4: case 6: return 0x8000;        // unsigned 16 bit
    default: throw Corrupt("unsupported shorten sample type " + std::to_string(type));
  }
}

int32_t c_div(int64_t a, int64_t b) { return static_cast<int32_t>(a / b); }  // truncates, as C

class BitReader {
 public:
  BitReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint64_t left() const { return cache_bits_ + 8 * (size_ - pos_); }

  bool only_padding_left() {
    refill();
    return left() < 8 && cache_ == 0;
  }

  uint32_t read(int n) {
    if (n == 0) return 0;
    if (cache_bits_ < n) refill();
    if (cache_bits_ < n) throw Corrupt("stream ends early");
    uint32_t v = static_cast<uint32_t>(cache_ >> (64 - n));
    cache_ <<= n;
    cache_bits_ -= n;
    return v;
  }

  uint32_t uvar(int n) {
    uint64_t high = 0;
    for (;;) {
      if (cache_bits_ == 0) {
        refill();
        if (cache_bits_ == 0) throw Corrupt("stream ends early, inside a Rice code");
      }
      if (cache_ != 0) {
        int zeros = __builtin_clzll(cache_);  // < cache_bits_: unused bits are zero
        high += zeros;
        cache_ <<= zeros;
        cache_ <<= 1;
        cache_bits_ -= zeros + 1;
        break;
      }
      high += cache_bits_;
      cache_bits_ = 0;
    }
    if (n > 31 || high >= (uint64_t{1} << (32 - n)))
      throw Corrupt("Rice code out of range (corrupt stream)");
    return static_cast<uint32_t>(high << n) | read(n);
  }

  int32_t svar(int n) {
    uint32_t u = uvar(n + 1);
    return (u & 1) ? ~static_cast<int32_t>(u >> 1) : static_cast<int32_t>(u >> 1);
  }

  uint32_t ulong(int version, int n) { return uvar(version ? static_cast<int>(uvar(kUlongSize)) : n); }

 private:
  void refill() {
    while (cache_bits_ <= 56 && pos_ < size_) {
      cache_ |= static_cast<uint64_t>(data_[pos_++]) << (56 - cache_bits_);
      cache_bits_ += 8;
    }
  }
  const uint8_t* data_;
  size_t size_, pos_ = 0;
  uint64_t cache_ = 0;  // valid bits left-aligned, the rest zero
  int cache_bits_ = 0;
};

struct Header {
  int version, file_type, channels, blocksize, maxnlpc, nmean, nskip;
};

// Decodes into `out` (interleaved); returns the header.
Header decode_stream(const uint8_t* data, size_t size, std::vector<int32_t>& out) {
  if (size < 5 || data[0] != 'a' || data[1] != 'j' || data[2] != 'k' || data[3] != 'g')
    throw Corrupt("not a shorten stream (no 'ajkg' magic)");
  BitReader r(data, size);
  r.read(32);
  Header h{};
  h.version = static_cast<int>(r.read(8));
  if (h.version > kMaxVersion)
    throw Corrupt("shorten version " + std::to_string(h.version) + " is not supported (0-3)");
  h.file_type = static_cast<int>(r.ulong(h.version, kTypeSize));
  const int mean0 = type_mean(h.file_type);
  h.channels = static_cast<int>(r.ulong(h.version, kChanSize));
  if (h.channels < 1 || h.channels > kMaxChannels)
    throw Corrupt("bad channel count " + std::to_string(h.channels));
  h.blocksize = kDefaultBlocksize;
  if (h.version > 0) {
    h.blocksize = static_cast<int>(r.ulong(h.version, 8));
    h.maxnlpc = static_cast<int>(r.ulong(h.version, kLpcqSize));
    h.nmean = static_cast<int>(r.ulong(h.version, 0));
    h.nskip = static_cast<int>(r.ulong(h.version, kNskipSize));
    if (h.blocksize < 1 || h.blocksize > kMaxBlocksize)
      throw Corrupt("bad block size " + std::to_string(h.blocksize));
    if (h.maxnlpc > 1024 || h.nmean > 32768) throw Corrupt("implausible header (corrupt stream)");
    for (int i = 0; i < h.nskip; i++) r.uvar(kXbyteSize);
  }
  const int version = h.version, channels = h.channels, nmean = h.nmean;
  const int nwrap = std::max(kNwrap, h.maxnlpc);
  const int32_t lpcq = version >= 2 ? (1 << kLpcQuant) : 0;
  int blocksize = h.blocksize, bitshift = 0;
  // per channel: nwrap history samples, then the block
  std::vector<std::vector<int32_t>> buf(channels, std::vector<int32_t>(nwrap + blocksize, 0));
  std::vector<std::vector<int32_t>> offsets(channels, std::vector<int32_t>(std::max(1, nmean), mean0));
  std::vector<int32_t> coeffs(nwrap);
  int chan = 0;
  for (;;) {
    if (chan == 0 && r.only_padding_left()) break;  // no QUIT, clean end between blocks
    const uint32_t cmd = r.uvar(kFnSize);
    if (cmd == QUIT) break;
    switch (cmd) {
      case VERBATIM: {
        uint32_t n = r.uvar(kVerbatimCkSize);
        while (n--) r.uvar(kVerbatimByteSize);
        continue;
      }
      case BITSHIFT:
        bitshift = static_cast<int>(r.uvar(kBitshiftSize));
        if (bitshift > 31) throw Corrupt("bad bitshift (corrupt stream)");
        continue;
      case BLOCKSIZE: {
        int log2 = 31 - __builtin_clz(static_cast<unsigned>(blocksize));
        int n = static_cast<int>(r.ulong(version, log2));
        if (n < 1 || n > blocksize)
          throw Corrupt("bad block size change " + std::to_string(blocksize) + " -> " +
                        std::to_string(n) + " (corrupt stream)");
        blocksize = n;
        continue;
      }
      case DIFF0: case DIFF1: case DIFF2: case DIFF3: case QLPC: case ZERO:
        break;
      default:
        throw Corrupt("unknown function code " + std::to_string(cmd) + " (corrupt stream)");
    }
    int residual_bits = 0;
    if (cmd != ZERO) {
      residual_bits = static_cast<int>(r.uvar(kEnergySize)) - (version == 0 ? 1 : 0);
      if (residual_bits > 31) throw Corrupt("bad residual width (corrupt stream)");
    }
    std::vector<int32_t>& off = offsets[chan];
    int32_t coffset;
    if (nmean == 0) {
      coffset = off[0];
    } else {
      int64_t sum = version >= 2 ? nmean / 2 : 0;
      for (int i = 0; i < nmean; i++) sum += off[i];
      coffset = c_div(sum, nmean);
      if (version >= 2 && bitshift) coffset = (coffset >> (bitshift - 1)) >> 1;
    }
    int32_t* s = buf[chan].data() + nwrap;  // s[-nwrap .. -1] is the history
    if (cmd == ZERO) {
      std::fill(s, s + blocksize, 0);
    } else if (cmd == QLPC) {
      const int order = static_cast<int>(r.uvar(kLpcqSize));
      if (order > nwrap)
        throw Corrupt("QLPC order " + std::to_string(order) + " above the header's (corrupt stream)");
      for (int j = 0; j < order; j++) coeffs[j] = r.svar(kLpcQuant);
      if (coffset)
        for (int i = -order; i < 0; i++) s[i] -= coffset;
      for (int i = 0; i < blocksize; i++) {
        int64_t sum = lpcq;
        for (int j = 0; j < order; j++) sum += static_cast<int64_t>(coeffs[j]) * s[i - j - 1];
        s[i] = r.svar(residual_bits) + static_cast<int32_t>(sum >> kLpcQuant);
      }
      if (coffset)
        for (int i = 0; i < blocksize; i++) s[i] += coffset;
    } else if (cmd == DIFF0) {
      for (int i = 0; i < blocksize; i++) s[i] = r.svar(residual_bits) + coffset;
    } else if (cmd == DIFF1) {
      for (int i = 0; i < blocksize; i++) s[i] = r.svar(residual_bits) + s[i - 1];
    } else if (cmd == DIFF2) {
      for (int i = 0; i < blocksize; i++) s[i] = r.svar(residual_bits) + 2 * s[i - 1] - s[i - 2];
    } else {
      for (int i = 0; i < blocksize; i++)
        s[i] = r.svar(residual_bits) + 3 * s[i - 1] - 3 * s[i - 2] + s[i - 3];
    }
    if (nmean > 0) {
      int64_t sum = version >= 2 ? blocksize / 2 : 0;
      for (int i = 0; i < blocksize; i++) sum += s[i];
      std::rotate(off.begin(), off.begin() + 1, off.end());
      int32_t mean = c_div(sum, blocksize);
      off[nmean - 1] = version >= 2 ? static_cast<int32_t>(static_cast<uint32_t>(mean) << bitshift) : mean;
    }
    for (int i = -nwrap; i < 0; i++) s[i] = s[i + blocksize];  // history for the next block
    if (bitshift)
      for (int i = 0; i < blocksize; i++) s[i] = static_cast<int32_t>(static_cast<uint32_t>(s[i]) << bitshift);
    if (++chan == channels) {
      chan = 0;
      const size_t base = out.size();
      out.resize(base + static_cast<size_t>(blocksize) * channels);
      int32_t* o = out.data() + base;
      for (int c = 0; c < channels; c++) {
        const int32_t* src = buf[c].data() + nwrap;
        for (int i = 0; i < blocksize; i++) o[static_cast<size_t>(i) * channels + c] = src[i];
      }
    }
  }
  if (chan != 0)
    throw Corrupt("stream ends inside a block (" + std::to_string(chan) + " of " +
                  std::to_string(channels) + " channels decoded)");
  return h;
}

py::tuple decode(py::bytes stream, int64_t expected_samples) {
  std::string_view view = stream;  // pybind11 >= 2.10
  std::vector<int32_t> out;
  Header h;
  {
    py::gil_scoped_release release;
    if (expected_samples > 0) out.reserve(static_cast<size_t>(expected_samples) + 65536);
    h = decode_stream(reinterpret_cast<const uint8_t*>(view.data()), view.size(), out);
  }
  const py::ssize_t frames = static_cast<py::ssize_t>(out.size() / h.channels);
  py::array_t<int32_t> samples({frames, static_cast<py::ssize_t>(h.channels)});
  std::copy(out.begin(), out.end(), samples.mutable_data());
  py::tuple header = py::make_tuple(h.version, h.file_type, h.channels, h.blocksize, h.maxnlpc,
                                    h.nmean, h.nskip);
  return py::make_tuple(samples, header);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Shorten decoder (asr.shorten)";
  m.def("decode", &decode, py::arg("stream"), py::arg("expected_samples") = 0,
        "Decode a shorten stream: (int32 samples (frames, channels), header tuple).");
}
