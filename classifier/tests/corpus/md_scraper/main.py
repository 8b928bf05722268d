import modal

app = modal.App("scraper")
image = modal.Image.debian_slim().pip_install("requests", "beautifulsoup4")


@app.function(image=image, retries=3)
def get_links(url: str) -> list:
    import requests
    from bs4 import BeautifulSoup

    html = requests.get(url, timeout=10).text
    return [a.get("href") for a in BeautifulSoup(html, "html.parser").find_all("a")]


@app.local_entrypoint()
def main():
    print(get_links.remote("https://example.com"))
