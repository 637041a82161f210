"""Demo camera videos, drawn by the project (vision.synthetic) and looped by the demo cameras' `file://` streams:
most kitchens simply work; one camera gets covered, one gets turned away, and a storeroom camera at night sees a
rat run along the counter (5 frames/s: the pest check follows the animal from frame to frame), so camera and
pest alerts reach the queue minutes after `make run`."""

from __future__ import annotations

from pathlib import Path

import cv2

from vision import synthetic

WIDTH, HEIGHT = 640, 360
DEMO_VIDEOS = {
    "kitchen": synthetic.normal_activity(duration_s=300),
    # covered after a minute, for three minutes of each five-minute loop
    "covered": synthetic.covered(start_s=60, end_s=240, duration_s=300),
    "turned": synthetic.rotated(degrees=8.0, start_s=60, duration_s=300),
    "night": synthetic.after_hours_pest(start_s=20, run_s=6, duration_s=60, fps=5.0),
}


def write_demo_videos(directory: Path) -> dict[str, Path]:
    """Write each demo video once (Motion-JPEG in AVI: OpenCV reads it back everywhere); existing files are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, scenario in DEMO_VIDEOS.items():
        path = directory / f"{name}.avi"
        if not path.exists():
            partial = directory / f"{name}.partial.avi"
            writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"MJPG"), scenario.fps,
                                     (WIDTH, HEIGHT))
            try:
                for k in range(scenario.frame_count):
                    writer.write(synthetic.render_frame(scenario, k, WIDTH, HEIGHT))
            finally:
                writer.release()
            partial.replace(path)
        paths[name] = path.resolve()
    return paths
