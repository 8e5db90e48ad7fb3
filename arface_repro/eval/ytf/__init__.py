"""YouTube Faces: the splits reader and the video-pair metric (`metric`) and the protocol class (`protocol`)."""
