"""On-the-fly delivery: Cloudinary-style transformation URLs served from the platform's
own stores (``image-assets serve``)."""
