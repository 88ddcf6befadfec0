"""The audio track of a video file: decoded with PyAV (FFmpeg), mixed to mono, resampled, and as a log-mel
spectrogram; and writing a clip with its audio track (the AffectSynth exporters of MELD and CAER).

``read_audio(path)`` decodes a clip's first audio stream to float samples, averages its channels (a stereo
track whose channels are equal comes back unchanged; FFmpeg's own down-mix would scale it by sqrt 2) and
resamples it with FFmpeg's resampler (libswresample, a windowed-sinc filter) to ``SAMPLE_RATE`` (16 kHz):
``[S]`` float32 in [-1, 1]. A file without an audio stream gives None (a missing modality, for the caller to
count and mask); a file FFmpeg cannot open raises ``VideoDecodeError`` naming it; a stream that breaks off
keeps the samples before the damage, with ``AudioTrack.problem`` saying so. Decoders may return a few padding
samples after the end (AAC's last frame): the track is cut at the duration the container declares.

``log_mel(waveform)``: the spectrogram of METHODS.md (the paper's ResDAVEnet input): 16 kHz, ``n_fft`` 2048
(Hann window of 2048 samples), hop 160 (10 ms), 128 triangular mel filters on the HTK mel scale from 0 Hz to
the Nyquist frequency (the same filters as ``nn/encoders/audio.py``'s ``LogMel``), power spectrum, natural log
of ``mel + 1e-6``: ``[F, 128]`` with ``F = S // 160 + 1`` (frames centred, zero-padded at both ends; torchaudio
is not installed, so this is ``torch.stft``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlab.data.media.video import VideoDecodeError, _av

SAMPLE_RATE = 16_000
N_FFT, HOP_LENGTH, N_MELS = 2048, 160, 128
LOG_OFFSET = 1e-6


@dataclass(frozen=True)
class AudioTrack:
    waveform: np.ndarray  # [S] float32 in [-1, 1], mono, at sample_rate
    sample_rate: int
    source_rate: int  # the stream's own rate
    channels: int  # the stream's own channel count
    problem: str | None = None  # where decoding stopped early, else None


def has_audio(path: str | Path) -> bool:
    """Whether the file holds an audio stream (opened, not decoded); ``VideoDecodeError`` if it cannot be opened."""
    av = _av()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError) as error:
        raise VideoDecodeError(f"{path}: cannot open ({error}); is the file complete?") from None


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> AudioTrack | None:
    """The first audio stream of ``path`` as mono float samples at ``sample_rate`` (module docstring); None when
    the file has no audio stream. ``max_seconds`` stops decoding after that much audio."""
    av = _av()
    path = Path(path)
    chunks: list[np.ndarray] = []  # (C, n) float32 each
    problem = None
    limit = None if max_seconds is None else round(max_seconds * sample_rate)
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            source_rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            channels = int(stream.codec_context.layout.nb_channels or 1)
            declared = None
            if stream.duration is not None and stream.time_base is not None:
                declared = round(float(stream.duration * stream.time_base) * sample_rate)
            resampler = None
            total = 0
            try:
                for frame in container.decode(stream):
                    if resampler is None:  # the frame's own layout kept: channels are averaged below
                        resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=sample_rate)
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
                        total += out.samples
                    if limit is not None and total >= limit:
                        break
                if resampler is not None:
                    for out in resampler.resample(None):  # the filter's tail
                        chunks.append(out.to_ndarray())
            except (av.error.FFmpegError, OSError) as error:
                problem = f"{path}: audio decoding stopped after {total / sample_rate:.2f} s: {error}"
    except (av.error.FFmpegError, OSError) as error:
        raise VideoDecodeError(f"{path}: cannot open ({error}); is the file complete?") from None
    if chunks:
        waveform = np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32)  # (S,) channels averaged
    else:
        waveform = np.zeros(0, np.float32)
        problem = problem or f"{path}: its audio stream holds no decodable sample"
    if declared:
        waveform = waveform[:declared]  # decoder padding after the declared end (AAC's last frame)
    if limit is not None:
        waveform = waveform[:limit]
    return AudioTrack(np.clip(waveform, -1.0, 1.0), sample_rate, source_rate, channels, problem)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS):
    """Triangular mel filters (HTK mel scale, 0 Hz to Nyquist), ``[n_mels, n_fft // 2 + 1]`` (torch)."""
    import torch

    def hz_to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    mels = torch.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]  # (n_mels, 1) each
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def log_mel(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
            n_mels: int = N_MELS) -> np.ndarray:
    """``[S]`` float waveform -> ``[S // hop_length + 1, n_mels]`` float32 log-mel spectrogram (module docstring)."""
    import torch

    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if x.numel() == 0:
        return np.zeros((0, n_mels), np.float32)
    spec = torch.stft(x, n_fft, hop_length, window=torch.hann_window(n_fft), center=True, pad_mode="constant",
                      return_complex=True)  # (n_fft // 2 + 1, F)
    power = spec.real.pow(2) + spec.imag.pow(2)
    mel = mel_filterbank(sample_rate, n_fft, n_mels) @ power  # (n_mels, F)
    return torch.log(mel + LOG_OFFSET).T.contiguous().numpy()  # (F, n_mels)


def write_clip(path: str | Path, frames: np.ndarray | list[np.ndarray], fps: float, codec: str,
               audio: np.ndarray | None, sample_rate: int, audio_codec: str = "aac", channels: int = 1) -> Path:
    """Encode ``[T, H, W, 3]`` uint8 RGB frames and, if given, an ``[S]`` int16 mono waveform (written to
    ``channels`` equal channels) into one file: MELD's clips are H.264 with AAC in MP4, CAER's MPEG-4 part 2 in
    AVI (here with 16-bit PCM, which AVI holds losslessly). The audio stream's bytes are the same for the same
    input; H.264's (libx264 through PyAV) vary by a few bytes from run to run, as ``video.write_video``'s do."""
    av = _av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(codec, rate=round(fps))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "18", "preset": "veryfast"}
        sound = None
        if audio is not None:
            sound = container.add_stream(audio_codec, rate=sample_rate, layout="mono" if channels == 1 else "stereo")
        for t, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = t
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.repeat(np.asarray(audio, np.int16)[:, None], channels, axis=1).reshape(1, -1)  # interleaved
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="s16",
                                               layout="mono" if channels == 1 else "stereo")
            frame.sample_rate, frame.pts = sample_rate, 0
            for packet in sound.encode(frame):
                container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path
