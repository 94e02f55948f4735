import pytest
from PIL import Image

from common.images import DecodedOnce, open_image


def test_open_image_applies_exif_orientation_and_closes_the_file(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("RGB", (40, 20), (200, 10, 10)).save(path, exif=exif)
    image = open_image(path)
    assert image.size == (20, 40)
    path.unlink()  # the file is closed: the image stays usable
    assert image.getpixel((5, 5))[0] > 150


def test_open_image_names_the_file_in_its_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at .*absent.png"):
        open_image(tmp_path / "absent.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read .*bad.png"):
        open_image(tmp_path / "bad.png")


def test_decoded_once_reads_each_path_once_whatever_its_type(tmp_path):
    reads = []
    read = DecodedOnce(lambda path: reads.append(path) or [str(path)])
    first = read(tmp_path / "a.png")
    assert read(str(tmp_path / "a.png")) is first and read(tmp_path / "b.png") == [str(tmp_path / "b.png")]
    assert reads == [tmp_path / "a.png", tmp_path / "b.png"]
