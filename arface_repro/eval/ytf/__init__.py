"""YouTube Faces: the splits reader (`splits`), the video-pair metric (`metric`) and the protocol class (`protocol`)."""
